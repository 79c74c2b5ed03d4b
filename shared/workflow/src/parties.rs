//! Who acts on a step: the ladder of parties an escalation climbs, and who may decide a party's
//! step.

use xueji_auth::{Caller, Jurisdiction, Level, Role};

use crate::task::Party;

/// Is `code` a jurisdiction a step may name: a 6-digit division code or a 10-digit school
/// code, ASCII digits only. (Steps can arrive from another province: nothing downstream may
/// slice a code that is not this.)
pub fn is_jurisdiction_code(code: &str) -> bool {
    (code.len() == 6 || code.len() == 10) && code.bytes().all(|b| b.is_ascii_digit())
}

/// The province (2 digits) a jurisdiction code lies in: a division's first two digits, a
/// school code's third and fourth; `None` for anything that is not a jurisdiction code.
pub fn province_of_jurisdiction(code: &str) -> Option<&str> {
    if !is_jurisdiction_code(code) {
        return None;
    }
    match code.len() {
        6 => code.get(..2),
        _ => code.get(2..4),
    }
}

/// The party one level above `party`, for escalation: a school's turn passes to its
/// authority, a county's to its city, a city's to its province; a province has none above,
/// and neither has a party whose jurisdiction is not a code (it never escalates anywhere).
pub fn level_above(party: &Party, school_authority: &str) -> Option<Party> {
    let j = party.jurisdiction.as_str();
    if !is_jurisdiction_code(j) {
        return None;
    }
    let up = if j.len() == 10 {
        if !is_jurisdiction_code(school_authority) || school_authority.len() != 6 {
            return None;
        }
        school_authority.to_owned()
    } else if !j.ends_with("00") {
        format!("{}00", j.get(..4)?)
    } else if !j.ends_with("0000") {
        format!("{}0000", j.get(..2)?)
    } else {
        return None;
    };
    Some(Party {
        jurisdiction: up,
        ..party.clone()
    })
}
/// May `caller` decide a step of `party`? Authorities decide through their approvers; a
/// school through its own accounts.
pub fn may_decide(caller: &Caller, party: &Party) -> bool {
    match &caller.jurisdiction {
        Jurisdiction::School(code) => code.as_str() == party.jurisdiction,
        Jurisdiction::Division(division) => {
            caller.role == Role::Approver
                && caller.level != Level::School
                && division.as_str() == party.jurisdiction
        }
        Jurisdiction::Nation => false,
    }
}

/// Could `caller` decide any step at all? Approvers of an authority below the ministry, and
/// schools. (Which step is theirs is [`may_decide`].)
pub fn may_decide_some_step(caller: &Caller) -> bool {
    match caller.level {
        Level::School => true,
        Level::Ministry => false,
        _ => caller.role == Role::Approver,
    }
}
