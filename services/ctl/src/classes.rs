//! `xuejictl class …`: a school's classes (班级) and seats (班内学号): open, list, seat a pupil,
//! the roster by seat, and carrying the classes into the next school year after promotion.

use anyhow::Context;
use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use xueji_client::OperatorChannel;
use xueji_proto::identity::v1::{self as pb, class_service_client::ClassServiceClient};

#[derive(Subcommand)]
pub(crate) enum ClassCommand {
    /// Open a class (the same name again answers it as it is).
    Create {
        #[arg(long)]
        school: String,
        #[arg(long)]
        grade: u32,
        /// e.g. 一年级(1)班
        #[arg(long)]
        name: String,
        /// 班主任
        #[arg(long, default_value = "")]
        head_teacher: String,
        /// The school year (the calendar year it starts in); default the current one.
        #[arg(long, default_value_t = 0)]
        year: u32,
    },
    /// The school's classes with how many pupils each holds.
    List {
        #[arg(long)]
        school: String,
        #[arg(long, default_value_t = 0)]
        year: u32,
    },
    /// Seat a pupil in a class of their school (`--class ""` takes them out).
    Assign {
        registry_number: String,
        #[arg(long)]
        class: String,
        /// 班内学号 (1–999); default the next free one.
        #[arg(long, default_value_t = 0)]
        seat: u32,
        #[arg(long, default_value_t = 0)]
        year: u32,
    },
    /// A class's pupils by seat; with --output, the 在校生名册 (every class of the school, or
    /// the one named) as XLSX or CSV.
    Roster {
        #[arg(long)]
        school: String,
        /// The class; may be left out with --output (every class).
        #[arg(long, default_value = "")]
        class: String,
        #[arg(long, default_value_t = 0)]
        year: u32,
        /// Write the 在校生名册 to this file (.xlsx or .csv).
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// After promotion: carry the classes of a school year into the next (the plan, unless
    /// --confirm).
    Carry {
        #[arg(long)]
        school: String,
        /// The school year whose classes move up.
        #[arg(long)]
        from_year: u32,
        #[arg(long)]
        confirm: bool,
    },
}

fn classes_table(classes: &[pb::SchoolClass]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "year",
        "grade",
        "class",
        "head teacher",
        "pupils",
    ]);
    for class in classes {
        table.add_row([
            class.school_year.to_string(),
            class.grade.to_string(),
            class.name.clone(),
            class.head_teacher.clone(),
            class.pupils.to_string(),
        ]);
    }
    table
}

pub(crate) async fn run(
    channel: OperatorChannel,
    command: ClassCommand,
    json: bool,
) -> anyhow::Result<()> {
    let mut client = ClassServiceClient::new(channel);
    match command {
        ClassCommand::Create {
            school,
            grade,
            name,
            head_teacher,
            year,
        } => {
            let created = client
                .create_class(pb::CreateClassRequest {
                    school_code: school,
                    school_year: year,
                    grade,
                    name,
                    head_teacher,
                })
                .await?
                .into_inner();
            let class = created.class.unwrap_or_default();
            if json {
                println!(
                    "{}",
                    serde_json::json!({"id": class.id, "name": class.name, "created": created.created})
                );
            } else {
                println!(
                    "{} class {} (grade {}, {})",
                    if created.created {
                        "opened"
                    } else {
                        "already open:"
                    },
                    class.name,
                    class.grade,
                    class.school_year
                );
            }
        }
        ClassCommand::List { school, year } => {
            let listed = client
                .list_classes(pb::ListClassesRequest {
                    school_code: school,
                    school_year: year,
                })
                .await?
                .into_inner();
            if json {
                let rows: Vec<_> = listed
                    .classes
                    .iter()
                    .map(|c| serde_json::json!({"id": c.id, "grade": c.grade, "name": c.name, "head_teacher": c.head_teacher, "pupils": c.pupils}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if listed.classes.is_empty() {
                println!("no class in the school year {}", listed.school_year);
            } else {
                println!("{}", classes_table(&listed.classes));
            }
        }
        ClassCommand::Assign {
            registry_number,
            class,
            seat,
            year,
        } => {
            let student = client
                .assign_class(pb::AssignClassRequest {
                    registry_number,
                    class_name: class,
                    seat,
                    school_year: year,
                })
                .await?
                .into_inner()
                .student
                .unwrap_or_default();
            if student.class_name.is_empty() {
                println!("{} is in no class", student.registry_number);
            } else {
                println!(
                    "{} {}: {} seat {}",
                    student.registry_number, student.name, student.class_name, student.class_seat
                );
            }
        }
        ClassCommand::Roster {
            school,
            class,
            year,
            output: Some(output),
        } => {
            let format = output
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(xueji_sheets::Format::of_file_name)
                .context("--output: name a .xlsx or .csv file")?;
            let listed = client
                .list_classes(pb::ListClassesRequest {
                    school_code: school.clone(),
                    school_year: year,
                })
                .await?
                .into_inner();
            let mut classes = Vec::new();
            for listed_class in listed.classes {
                if !class.is_empty() && listed_class.name != class {
                    continue;
                }
                let roster = client
                    .get_class_roster(pb::GetClassRosterRequest {
                        school_code: school.clone(),
                        school_year: listed.school_year,
                        class_name: listed_class.name.clone(),
                    })
                    .await?
                    .into_inner();
                classes.push((listed_class, roster.pupils));
            }
            anyhow::ensure!(
                !classes.is_empty(),
                "no class {class} in the school year {}",
                listed.school_year
            );
            let pupils: usize = classes.iter().map(|(_, p)| p.len()).sum();
            let bytes =
                xueji_client::print::roster_sheet(&school, listed.school_year, &classes, format)?;
            std::fs::write(&output, bytes)
                .with_context(|| format!("writing {}", output.display()))?;
            println!(
                "在校生名册: {} classes, {pupils} pupils, written to {}",
                classes.len(),
                output.display()
            );
        }
        ClassCommand::Roster {
            school,
            class,
            year,
            output: None,
        } => {
            let roster = client
                .get_class_roster(pb::GetClassRosterRequest {
                    school_code: school,
                    school_year: year,
                    class_name: class,
                })
                .await?
                .into_inner();
            if json {
                let rows: Vec<_> = roster
                    .pupils
                    .iter()
                    .map(|p| serde_json::json!({"seat": p.seat, "student": p.student.as_ref().map(crate::students::to_json)}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            let class = roster.class.unwrap_or_default();
            println!(
                "{} (grade {}, {}, 班主任 {}): {} pupils",
                class.name,
                class.grade,
                class.school_year,
                class.head_teacher,
                roster.pupils.len()
            );
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED).set_header([
                "班内学号",
                "registry number",
                "name",
                "gender",
                "birth date",
                "status",
            ]);
            for pupil in &roster.pupils {
                let student = pupil.student.clone().unwrap_or_default();
                table.add_row([
                    pupil.seat.to_string(),
                    student.registry_number.clone(),
                    student.name.clone(),
                    student
                        .gender()
                        .as_str_name()
                        .trim_start_matches("GENDER_")
                        .to_lowercase(),
                    student.birth_date.clone(),
                    crate::students::status_name(&student),
                ]);
            }
            println!("{table}");
        }
        ClassCommand::Carry {
            school,
            from_year,
            confirm,
        } => {
            let carried = client
                .carry_classes_forward(pb::CarryClassesForwardRequest {
                    school_code: school,
                    from_school_year: from_year,
                    confirm,
                })
                .await?
                .into_inner();
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED).set_header([
                "class",
                "becomes",
                "pupils moving",
                "not carried",
            ]);
            for carry in &carried.carries {
                let (from, to) = (
                    carry.from.clone().unwrap_or_default(),
                    carry.to.clone().unwrap_or_default(),
                );
                table.add_row([
                    format!("{} (grade {})", from.name, from.grade),
                    format!("{} (grade {}, {})", to.name, to.grade, to.school_year),
                    carry.pupils_moving.to_string(),
                    carry.not_carried.clone(),
                ]);
            }
            println!("{table}");
            println!(
                "{}",
                if carried.applied {
                    "carried"
                } else {
                    "the plan only: run again with --confirm to carry the classes"
                }
            );
        }
    }
    Ok(())
}
