//! Classes (班级) and seats (班内学号) on a running federation: a school opens its classes, seats
//! pupils at registration and afterwards (a seat holds one pupil), reads a roster by seat; after
//! the summer's promotion the school carries its classes into the next school year, the plan
//! first, and the pupils keep their seats.

use tonic::Code;
use xueji_auth::{Level, Role};
use xueji_identity::domain::school_year::SchoolYearPolicy;
use xueji_proto::identity::v1 as ipb;
use xueji_tests::{
    federation::{Federation, registration_at},
    resident_id,
    transfers::{active_student, student_seen_by},
    violated_fields,
};

fn class_request(school: &str, year: u32, grade: u32, name: &str) -> ipb::CreateClassRequest {
    ipb::CreateClassRequest {
        school_code: school.into(),
        school_year: year,
        grade,
        name: name.into(),
        head_teacher: "陈老师".into(),
    }
}

/// A roster's (seat, registry number) pairs, by seat.
fn seats(roster: &ipb::GetClassRosterResponse) -> Vec<(u32, String)> {
    roster
        .pupils
        .iter()
        .map(|p| (p.seat, p.student.as_ref().unwrap().registry_number.clone()))
        .collect()
}

fn assign(number: &str, class: &str, seat: u32, year: u32) -> ipb::AssignClassRequest {
    ipb::AssignClassRequest {
        registry_number: number.into(),
        class_name: class.into(),
        seat,
        school_year: year,
    }
}

#[tokio::test]
async fn a_school_seats_its_pupils_in_classes_and_reads_the_roster_by_seat() {
    let federation = Federation::start().await;
    let school = federation.a_primary_school("35").await;
    let mut classes = federation.classes(&school).await;

    // Opening: checked, and the same class twice is the same class.
    let first = classes
        .create_class(class_request(&school, 0, 1, "一年级(1)班"))
        .await
        .unwrap()
        .into_inner();
    assert!(first.created);
    let class = first.class.unwrap();
    assert_eq!((class.grade, class.pupils), (1, 0));
    let again = classes
        .create_class(class_request(&school, 0, 1, "一年级(1)班"))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.created);
    assert_eq!(again.class.unwrap().id, class.id);
    let other_grade = classes
        .create_class(class_request(&school, 0, 2, "一年级(1)班"))
        .await
        .unwrap_err();
    assert_eq!(other_grade.code(), Code::AlreadyExists, "{other_grade:?}");
    let bad = classes
        .create_class(class_request(&school, 0, 9, " "))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad), ["name", "grade"], "{bad:?}");
    classes
        .create_class(class_request(&school, 0, 3, "三年级(2)班"))
        .await
        .unwrap();

    // Seated at registration: the class's next free seats, in order.
    let county = federation.school_county("35", &school).await;
    let mut registrar = federation
        .identity("35", Level::School, &school, Role::Operator)
        .await;
    let mut seated = Vec::new();
    for n in 1..=2 {
        let mut request = registration_at(
            &format!("class-{n}"),
            &format!("班级{n}"),
            &school,
            &resident_id(&format!("{county}2019010{n}00{n}")),
        );
        request.class_name = "一年级(1)班".into();
        let student = registrar
            .register_student(request)
            .await
            .unwrap()
            .into_inner()
            .student
            .unwrap();
        assert_eq!(
            (student.class_name.as_str(), student.class_seat),
            ("一年级(1)班", n),
            "{student:?}"
        );
        seated.push(student.registry_number);
    }
    // A class the school has not opened is refused before anything is written.
    let mut unknown = registration_at(
        "class-unknown",
        "班级三",
        &school,
        &resident_id(&format!("{county}20190103005")),
    );
    unknown.class_name = "一年级(9)班".into();
    let refused = registrar
        .register_student(unknown.clone())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refused), ["class_name"], "{refused:?}");
    unknown.class_name = String::new();
    let written = registrar
        .register_student(unknown)
        .await
        .unwrap()
        .into_inner();
    assert!(!written.replayed, "the refused registration wrote nothing");

    // Seated afterwards: a seat holds one pupil; 0 takes the next free one.
    let (third_a, _, _) = active_student(&federation, "35", &school).await;
    let (third_b, _, _) = active_student(&federation, "35", &school).await;
    let placed = classes
        .assign_class(assign(&third_a, "三年级(2)班", 5, 0))
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap();
    assert_eq!(
        (placed.class_name.as_str(), placed.class_seat),
        ("三年级(2)班", 5)
    );
    let taken = classes
        .assign_class(assign(&third_b, "三年级(2)班", 5, 0))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::FailedPrecondition, "{taken:?}");
    assert!(taken.message().contains(&third_a), "{taken:?}");
    let next = classes
        .assign_class(assign(&third_b, "三年级(2)班", 0, 0))
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap();
    assert_eq!(next.class_seat, 6);
    // A pupil goes into a class of their own grade only.
    let wrong_grade = classes
        .assign_class(assign(&third_a, "一年级(1)班", 0, 0))
        .await
        .unwrap_err();
    assert_eq!(
        wrong_grade.code(),
        Code::FailedPrecondition,
        "{wrong_grade:?}"
    );

    // The roster, by seat; the list, with counts.
    let roster = classes
        .get_class_roster(ipb::GetClassRosterRequest {
            school_code: school.clone(),
            school_year: 0,
            class_name: "三年级(2)班".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seats(&roster), [(5, third_a.clone()), (6, third_b.clone())]);
    let listed = classes
        .list_classes(ipb::ListClassesRequest {
            school_code: school.clone(),
            school_year: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let counts: Vec<(String, u32)> = listed
        .classes
        .iter()
        .map(|c| (c.name.clone(), c.pupils))
        .collect();
    assert_eq!(
        counts,
        [("一年级(1)班".to_owned(), 2), ("三年级(2)班".to_owned(), 2)]
    );

    // The 在校生名册 of the school, as a workbook, reads back class by class, by seat.
    let mut rosters = Vec::new();
    for class in listed.classes.clone() {
        let roster = classes
            .get_class_roster(ipb::GetClassRosterRequest {
                school_code: school.clone(),
                school_year: listed.school_year,
                class_name: class.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        rosters.push((class, roster.pupils));
    }
    let workbook = xueji_client::print::roster_sheet(
        &school,
        listed.school_year,
        &rosters,
        xueji_sheets::Format::Xlsx,
    )
    .unwrap();
    let mut rows = Vec::new();
    xueji_sheets::read_xlsx(std::io::Cursor::new(workbook), |row| {
        rows.push(row.cells);
        true
    })
    .unwrap();
    assert_eq!(rows[0][0], "在校生名册");
    assert_eq!(rows[1], xueji_client::print::ROSTER_HEADINGS);
    let listed_rows: Vec<(String, String, String)> = rows[2..]
        .iter()
        .map(|r| (r[1].clone(), r[2].clone(), r[3].clone()))
        .collect();
    assert_eq!(
        listed_rows,
        [
            ("一年级(1)班".to_owned(), "1".to_owned(), seated[0].clone()),
            ("一年级(1)班".to_owned(), "2".to_owned(), seated[1].clone()),
            ("三年级(2)班".to_owned(), "5".to_owned(), third_a.clone()),
            ("三年级(2)班".to_owned(), "6".to_owned(), third_b.clone()),
        ]
    );

    // Out of the class: the seat is free again.
    let out = classes
        .assign_class(assign(&third_a, "", 0, 0))
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap();
    assert_eq!((out.class_name.as_str(), out.class_seat), ("", 0));
    classes
        .assign_class(assign(&third_b, "三年级(2)班", 5, 0))
        .await
        .expect("seat 5 is free again");

    // Another school's operator sees none of it.
    let other = federation
        .primary_schools("35")
        .await
        .into_iter()
        .find(|code| *code != school)
        .unwrap();
    let hidden = federation
        .classes(&other)
        .await
        .list_classes(ipb::ListClassesRequest {
            school_code: school.clone(),
            school_year: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound, "{hidden:?}");
}

#[tokio::test]
async fn after_promotion_a_schools_classes_move_up_with_their_pupils_once_it_confirms() {
    let federation = Federation::start().await;
    let school = federation.a_primary_school("35").await;
    let county = federation.school_county("35", &school).await;
    let today = xueji_calendar::china_today(federation.clock.now());
    let dates = SchoolYearPolicy::bundled().dates("35");
    let summer = dates.last_summer(today) as u32;
    let last_year = summer - 1;

    // Two grade-3 pupils of last school year in 三年级(2)班, seats 1 and 2; a grade-6 class.
    let mut pupils = Vec::new();
    for n in 1..=2 {
        let mut request = registration_at(
            &format!("carry-{n}"),
            &format!("升级{n}"),
            &school,
            &resident_id(&format!("{county}2017020{n}00{n}")),
        );
        request.grade = 3;
        request.entry_date = format!("{last_year}-09-01");
        let student = federation
            .identity("35", Level::School, &school, Role::Operator)
            .await
            .register_student(request)
            .await
            .unwrap()
            .into_inner()
            .student
            .unwrap();
        let mut approver = federation
            .identity("35", Level::County, &county, Role::Approver)
            .await;
        let approved =
            xueji_tests::approve_until_active(&mut approver, &student.registry_number).await;
        pupils.push(approved.registry_number);
    }
    let mut classes = federation.classes(&school).await;
    classes
        .create_class(class_request(&school, last_year, 3, "三年级(2)班"))
        .await
        .unwrap();
    classes
        .create_class(class_request(&school, last_year, 6, "六年级(1)班"))
        .await
        .unwrap();
    for (seat, number) in pupils.iter().enumerate() {
        classes
            .assign_class(assign(number, "三年级(2)班", seat as u32 + 1, last_year))
            .await
            .unwrap();
    }

    // The summer's promotion.
    let mut operator = federation
        .school_year("35", Level::Province, "350000", Role::Operator)
        .await;
    operator
        .run_cycle(ipb::RunCycleRequest { year: summer })
        .await
        .unwrap();
    crate::school_year::wait_done(&mut operator, summer).await;
    assert_eq!(
        student_seen_by(&federation, "35", &school, &pupils[0])
            .await
            .grade,
        4
    );

    // The plan: the grade-3 class becomes 四年级(2)班 with both pupils; the graduating grade's
    // class ends. Nothing changes yet.
    let carry = |confirm| ipb::CarryClassesForwardRequest {
        school_code: school.clone(),
        from_school_year: last_year,
        confirm,
    };
    let plan = classes
        .carry_classes_forward(carry(false))
        .await
        .unwrap()
        .into_inner();
    assert!(!plan.applied);
    let third = plan
        .carries
        .iter()
        .find(|c| c.from.as_ref().unwrap().name == "三年级(2)班")
        .unwrap();
    let to = third.to.as_ref().unwrap();
    assert_eq!(
        (to.name.as_str(), to.grade, to.school_year, to.id.as_str()),
        ("四年级(2)班", 4, summer, "")
    );
    assert_eq!((third.pupils_moving, third.not_carried.as_str()), (2, ""));
    let sixth = plan
        .carries
        .iter()
        .find(|c| c.from.as_ref().unwrap().name == "六年级(1)班")
        .unwrap();
    assert!(sixth.not_carried.contains("graduates"), "{sixth:?}");
    let this_year = classes
        .list_classes(ipb::ListClassesRequest {
            school_code: school.clone(),
            school_year: summer,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(this_year.classes.is_empty(), "{this_year:?}");

    // Confirmed: the class moves up, the pupils keep their seats; once only.
    let applied = classes
        .carry_classes_forward(carry(true))
        .await
        .unwrap()
        .into_inner();
    assert!(applied.applied);
    let roster = classes
        .get_class_roster(ipb::GetClassRosterRequest {
            school_code: school.clone(),
            school_year: summer,
            class_name: "四年级(2)班".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        seats(&roster),
        [(1, pupils[0].clone()), (2, pupils[1].clone())]
    );
    assert_eq!(roster.class.unwrap().head_teacher, "陈老师");
    let moved = student_seen_by(&federation, "35", &school, &pupils[1]).await;
    assert_eq!(
        (moved.class_name.as_str(), moved.class_seat),
        ("四年级(2)班", 2)
    );
    let twice = classes
        .carry_classes_forward(carry(true))
        .await
        .unwrap()
        .into_inner();
    let third = twice
        .carries
        .iter()
        .find(|c| c.from.as_ref().unwrap().name == "三年级(2)班")
        .unwrap();
    assert_eq!(third.not_carried, "carried before");
}

/// An intake spreadsheet with the class columns seats its pupils (the next free seat where
/// 班内学号 is empty); a class the school has not opened is the row's error, nothing written;
/// the export carries the class columns back.
#[tokio::test]
async fn an_intake_sheet_seats_its_pupils_and_the_export_carries_the_classes() {
    let federation = Federation::start().await;
    let school = federation.a_primary_school("35").await;
    let county = federation.school_county("35", &school).await;
    federation
        .classes(&school)
        .await
        .create_class(class_request(&school, 0, 1, "一年级(3)班"))
        .await
        .unwrap();
    let mut headings: Vec<String> = xueji_tests::imports::HEADINGS
        .iter()
        .map(|h| (*h).to_owned())
        .collect();
    headings.extend(["班级".to_owned(), "班内学号".to_owned()]);
    let mut writer = xueji_sheets::SheetWriter::new(xueji_sheets::Format::Csv).unwrap();
    writer.write_row(&headings).unwrap();
    let rows = [
        ("一年级(3)班", "4"),
        ("一年级(3)班", ""),
        ("一年级(9)班", ""),
    ];
    for (n, (class, seat)) in rows.iter().enumerate() {
        let request = registration_at(
            &format!("sheet-{n}"),
            &format!("表格{n}"),
            &school,
            &resident_id(&format!("{county}2019051{n}00{n}")),
        );
        let mut row = xueji_tests::imports::row_of(&request, "", "");
        row.extend([(*class).to_owned(), (*seat).to_owned()]);
        writer.write_row(&row).unwrap();
    }
    let mut file = writer.take_ready().unwrap();
    file.extend(writer.finish().unwrap());
    let job = xueji_tests::imports::import_as(
        &federation,
        "35",
        Level::School,
        &school,
        xueji_client::ImportKind::Intake,
        "新生.csv",
        &file,
    )
    .await
    .unwrap();
    assert_eq!((job.imported, job.bad), (2, 1), "{job:?}");
    assert!(
        job.first_errors
            .iter()
            .any(|e| e.heading == "班级" && e.reason.contains("一年级(9)班")),
        "{job:?}"
    );
    let roster = federation
        .classes(&school)
        .await
        .get_class_roster(ipb::GetClassRosterRequest {
            school_code: school.clone(),
            school_year: 0,
            class_name: "一年级(3)班".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<(u32, String)> = roster
        .pupils
        .iter()
        .map(|p| (p.seat, p.student.as_ref().unwrap().name.clone()))
        .collect();
    assert_eq!(names, [(4, "表格0".to_owned()), (5, "表格1".to_owned())]);

    // The export carries 班级 and 班内学号.
    let stream = federation
        .imports("35", Level::School, &school, Role::Operator)
        .await
        .export_students(ipb::ExportStudentsRequest {
            format: ipb::SheetFormat::Csv as i32,
            scope: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let (bytes, _) = xueji_client::download(stream, |m| (m.chunk, m.file_name))
        .await
        .unwrap();
    let mut read = Vec::new();
    xueji_sheets::read_csv(bytes.as_slice(), None, |row| {
        read.push(row.cells);
        true
    })
    .unwrap();
    let at = |name: &str| read[0].iter().position(|h| h == name).expect(name);
    let seated = read
        .iter()
        .find(|r| r[at("姓名")] == "表格0")
        .expect("the pupil's row");
    assert_eq!(
        (seated[at("班级")].as_str(), seated[at("班内学号")].as_str()),
        ("一年级(3)班", "4")
    );
}
