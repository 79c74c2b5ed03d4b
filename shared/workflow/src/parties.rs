//! Who acts on a step: the ladder of parties an escalation climbs, and who may decide a party's
//! step.

use xueji_auth::{Caller, Jurisdiction, Level, Role};

use crate::task::Party;

/// The party one level above `party`, for escalation: a school's turn passes to its
/// authority, a county's to its city, a city's to its province; a province has none above.
pub fn level_above(party: &Party, school_authority: &str) -> Option<Party> {
    let j = party.jurisdiction.as_str();
    let up = if j.len() == 10 {
        school_authority.to_owned()
    } else if j.len() == 6 && !j.ends_with("00") {
        format!("{}00", &j[..4])
    } else if j.len() == 6 && !j.ends_with("0000") {
        format!("{}0000", &j[..2])
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
