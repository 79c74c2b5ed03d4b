//! ISO 7064 MOD 11-2, the check character of resident ID numbers and `J` registry numbers.

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// The check character for 17 ASCII digits. The caller guarantees the digits.
pub(crate) fn check_char(body: &[u8; 17]) -> char {
    let sum: u32 = body
        .iter()
        .zip(WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    CHECK_CHARS[(sum % 11) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gb11643_example() {
        // The worked example of GB 11643-1999.
        assert_eq!(check_char(b"11010519491231002"), 'X');
        assert_eq!(check_char(b"44052418800101001"), '4');
    }
}
