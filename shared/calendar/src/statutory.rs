//! The statutory public holidays (《全国年节及纪念日放假办法》, as revised in 2024 and in force
//! from 2025): what a deadline reaching into a year nobody has loaded counts as days off,
//! besides weekends. The State Council's yearly schedule adds bridge days and make-up working
//! days (调休) that no rule predicts, so such a deadline stays flagged as an estimate until the
//! ministry loads the year.
//!
//! 元旦 1 January; 春节 the eve (除夕) and the first three days of the first lunar month;
//! 清明 the day of the solar term; 劳动节 1 and 2 May; 端午 the fifth day of the fifth lunar
//! month; 中秋 the fifteenth of the eighth; 国庆 1 to 3 October.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Mutex, OnceLock},
};

use chinese_lunisolar_calendar::LunisolarDate;
use chrono::{Days, NaiveDate};

/// Whether `date` is a statutory public holiday by the rules (not by a loaded schedule).
pub fn is_statutory_holiday(date: NaiveDate) -> bool {
    use chrono::Datelike;
    static YEARS: OnceLock<Mutex<HashMap<i32, BTreeSet<NaiveDate>>>> = OnceLock::new();
    let years = YEARS.get_or_init(Mutex::default);
    let mut years = match years.lock() {
        Ok(years) => years,
        // A panic while another thread filled a year leaves at worst that year missing.
        Err(poisoned) => poisoned.into_inner(),
    };
    years
        .entry(date.year())
        .or_insert_with(|| statutory_holidays(date.year()))
        .contains(&date)
}

/// The statutory public holidays of `year`. A lunar date outside the conversion table's range
/// (lunar years 1901–2100) or a 清明 outside 2000–2099 is left out: the estimate then counts
/// that day as the weekday it is.
pub fn statutory_holidays(year: i32) -> BTreeSet<NaiveDate> {
    let mut days = BTreeSet::new();
    let fixed = [(1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3)];
    days.extend(
        fixed
            .iter()
            .filter_map(|&(month, day)| NaiveDate::from_ymd_opt(year, month, day)),
    );
    if let Some(new_year) = lunar(year, 1, 1) {
        // The eve is the day before the first day of the lunar year.
        days.extend(new_year.checked_sub_days(Days::new(1)));
        days.extend((0..3).filter_map(|n| new_year.checked_add_days(Days::new(n))));
    }
    days.extend(lunar(year, 5, 5));
    days.extend(lunar(year, 8, 15));
    days.extend(qingming(year));
    days
}

/// The solar date of a lunar month and day in the lunar year that begins in solar `year`.
fn lunar(year: i32, month: u8, day: u8) -> Option<NaiveDate> {
    let year = u16::try_from(year).ok()?;
    LunisolarDate::from_ymd(year, month, false, day)
        .ok()
        .map(LunisolarDate::to_naive_date)
}

/// 清明, the solar term at the sun's longitude 15°, by the 21st-century rule of thumb (day of
/// April = ⌊0.2422·y + 4.81⌋ − ⌊y/4⌋ for y = year − 2000), exact for 2000–2099.
fn qingming(year: i32) -> Option<NaiveDate> {
    if !(2000..=2099).contains(&year) {
        return None;
    }
    let y = f64::from(year - 2000);
    let day = (0.2422 * y + 4.81).floor() as u32 - (year - 2000) as u32 / 4;
    NaiveDate::from_ymd_opt(year, 4, day)
}
