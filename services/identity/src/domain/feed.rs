//! The change feed's events as the stats service reads them. Rows are written per statement
//! (by triggers: see migration 0015); a transaction that closes one enrollment and opens
//! another for the same student (a transfer inside the province) wrote two rows, which are
//! one event: from the old place to the new.

/// Where a student counts, with the attributes figures are broken down by.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct FeedPlace {
    pub school: String,
    pub county: String,
    pub grade: i16,
    pub entry_route: String,
    pub gender: String,
    pub ethnicity: String,
    pub birth_date: chrono::NaiveDate,
    pub migrant: bool,
    pub left_behind: bool,
    pub registry_number: String,
    pub name: String,
    /// Key fields the record lacks (document_number, guardian.phone, guardian.name).
    #[serde(default)]
    pub missing: Vec<String>,
}

/// One row of the feed, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRow {
    pub position: u64,
    /// The transaction that wrote it (rows of one transaction are consecutive).
    pub transaction: u64,
    pub student: i64,
    pub on: chrono::NaiveDate,
    pub kind: String,
    pub from: Option<FeedPlace>,
    pub to: Option<FeedPlace>,
}

/// One event of the feed: a student's change of where it counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEvent {
    /// The position of its last row.
    pub position: u64,
    pub student: i64,
    pub on: chrono::NaiveDate,
    pub kind: String,
    pub from: Option<FeedPlace>,
    pub to: Option<FeedPlace>,
}

/// Joins each transaction's consecutive rows for one student into one event (from the first
/// row's place to the last's; the kind of the row that placed the student, else the first),
/// and drops a joined event that ends where it began.
pub fn join_rows(rows: Vec<FeedRow>) -> Vec<FeedEvent> {
    let mut events: Vec<FeedEvent> = Vec::with_capacity(rows.len());
    let mut last_key: Option<(u64, i64)> = None;
    for row in rows {
        let key = (row.transaction, row.student);
        match events.last_mut() {
            Some(event) if last_key == Some(key) => {
                event.position = row.position;
                event.on = row.on;
                if row.to.is_some() && row.from.is_none() {
                    event.kind = row.kind;
                }
                event.to = row.to;
            }
            _ => events.push(FeedEvent {
                position: row.position,
                student: row.student,
                on: row.on,
                kind: row.kind,
                from: row.from,
                to: row.to,
            }),
        }
        last_key = Some(key);
    }
    events.retain(|event| event.from != event.to);
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(school: &str) -> FeedPlace {
        FeedPlace {
            school: school.into(),
            county: "350102".into(),
            grade: 3,
            entry_route: "nearby_admission".into(),
            gender: "female".into(),
            ethnicity: "01".into(),
            birth_date: chrono::NaiveDate::from_ymd_opt(2016, 5, 1).unwrap(),
            migrant: false,
            left_behind: false,
            registry_number: "G1".into(),
            name: "林".into(),
            missing: Vec::new(),
        }
    }

    fn row(
        position: u64,
        transaction: u64,
        student: i64,
        kind: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> FeedRow {
        FeedRow {
            position,
            transaction,
            student,
            on: chrono::NaiveDate::from_ymd_opt(2026, 9, 1).unwrap(),
            kind: kind.into(),
            from: from.map(place),
            to: to.map(place),
        }
    }

    #[test]
    fn a_transfer_in_one_transaction_is_one_event() {
        let events = join_rows(vec![
            row(1, 10, 7, "transfer", Some("A"), None),
            row(2, 10, 7, "transfer", None, Some("B")),
            row(3, 10, 8, "registration", None, Some("A")),
            row(4, 11, 7, "suspension", Some("B"), None),
        ]);
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].position, 2);
        assert_eq!(events[0].from.as_ref().unwrap().school, "A");
        assert_eq!(events[0].to.as_ref().unwrap().school, "B");
        assert_eq!(events[1].student, 8);
        assert_eq!(events[2].kind, "suspension");
    }

    #[test]
    fn a_change_undone_in_its_transaction_is_no_event() {
        let events = join_rows(vec![
            row(1, 10, 7, "suspension", Some("A"), None),
            row(2, 10, 7, "resumption", None, Some("A")),
        ]);
        assert!(events.is_empty());
    }
}
