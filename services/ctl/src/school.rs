//! `xuejictl school …`: the school-code registry. Applications and lookups go to the
//! provincial node's intake and replica; decisions, lifecycle steps and publications to the
//! national authority (`--national` sends lookups there too).

use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::{Value, json};
use xueji_proto::schools::v1::{
    self as pb, school_authority_client::SchoolAuthorityClient,
    school_intake_client::SchoolIntakeClient,
};

use xueji_client::OperatorChannel;

mod input;
mod output;

use input::{profile, stages};
use output::{
    APPLICATION_COLUMNS, CHANGE_COLUMNS, SCHOOL_COLUMNS, application_json, cell, change_json,
    print, print_application, print_school, school_json, word,
};

#[derive(Subcommand)]
pub(crate) enum SchoolCommand {
    /// File a new-school application (county operator or approver).
    Apply(Box<ApplyArgs>),
    /// Endorse an application (the county, city, then province approver, in turn).
    Endorse { id: String },
    /// Send an application back to the county with a reason.
    Return {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Applications you can see, optionally of one status (filed, county_endorsed, …).
    Applications {
        #[arg(long)]
        status: Option<String>,
    },
    /// Approve an application and issue its code (ministry approver).
    Approve { id: String },
    /// Reject an application (ministry approver).
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Applications waiting for the national decision.
    Submitted,
    /// Rename a school; the code stays.
    Rename {
        code: String,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        step: StepArgs,
    },
    /// Merge schools into one.
    Merge {
        /// The predecessor codes.
        #[arg(required = true, num_args = 2..)]
        codes: Vec<String>,
        /// A predecessor whose code the merged school keeps (same category only).
        #[arg(long, default_value = "")]
        keep: String,
        #[command(flatten)]
        profile: ProfileArgs,
        #[command(flatten)]
        step: StepArgs,
    },
    /// Change a school's category: a new code, the old one voided.
    ChangeCategory {
        code: String,
        #[arg(long)]
        category: String,
        /// stage:years, e.g. junior:3
        #[arg(long, required = true)]
        stage: Vec<String>,
        #[command(flatten)]
        step: StepArgs,
    },
    /// Close a school (refused while it has students).
    Close {
        code: String,
        #[command(flatten)]
        step: StepArgs,
    },
    /// Reopen a closed school under its original code.
    Reopen {
        code: String,
        #[command(flatten)]
        step: StepArgs,
    },
    /// Publish every change since the last version (ministry approver).
    Publish {
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Pull publications and decisions from the national authority now.
    Sync,
    /// One school, by code (a voided code shows its successors).
    Show {
        code: String,
        #[arg(long)]
        national: bool,
    },
    /// Schools, narrowed by division, name or category.
    List {
        #[arg(long, default_value = "")]
        division: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, default_value = "")]
        category: String,
        /// Include closed and voided codes.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        national: bool,
    },
    /// Predecessors and successors of a code.
    Lineage {
        code: String,
        #[arg(long)]
        national: bool,
    },
    /// Publications after a version.
    Publications {
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
    /// The changes between two versions.
    Diff {
        #[arg(long)]
        from: u64,
        #[arg(long)]
        to: u64,
    },
}

#[derive(Args)]
pub(crate) struct StepArgs {
    /// The day the change takes effect (YYYY-MM-DD).
    #[arg(long)]
    effective: String,
    #[arg(long)]
    reason: String,
}

#[derive(Args)]
pub(crate) struct ProfileArgs {
    #[arg(long)]
    name: String,
    /// Two digits: 21 primary, 31 junior, 34 senior high, 51 special education, …
    #[arg(long)]
    category: String,
    /// stage:years, e.g. primary:6 (repeat for several stages).
    #[arg(long, required = true)]
    stage: Vec<String>,
    /// County-level division code of the location.
    #[arg(long)]
    division: String,
    /// Division code of the registry authority (the county, or the city for senior high).
    #[arg(long)]
    authority: String,
    /// public or private.
    #[arg(long, default_value = "public")]
    operator_type: String,
    #[arg(long)]
    address: String,
    /// Township (乡镇/街道) code, 9 digits starting with the division; optional.
    #[arg(long, default_value = "")]
    township: String,
}

#[derive(Args)]
pub(crate) struct ApplyArgs {
    /// Any unique string; reuse it to retry safely.
    #[arg(long)]
    idempotency_key: String,
    #[command(flatten)]
    profile: ProfileArgs,
    /// The day the school opens (YYYY-MM-DD).
    #[arg(long)]
    open_from: String,
}

pub(crate) async fn run(
    channel: OperatorChannel,
    command: SchoolCommand,
    json: bool,
) -> anyhow::Result<()> {
    let mut intake = SchoolIntakeClient::new(channel.clone());
    let mut authority = SchoolAuthorityClient::new(channel);
    match command {
        SchoolCommand::Apply(args) => {
            let ApplyArgs {
                idempotency_key,
                profile: profile_args,
                open_from,
            } = *args;
            let application = intake
                .file_application(pb::FileApplicationRequest {
                    idempotency_key,
                    profile: Some(profile(profile_args)?),
                    open_from,
                })
                .await?
                .into_inner()
                .application;
            print_application(application, json)?;
        }
        SchoolCommand::Endorse { id } => {
            let application = intake
                .endorse_application(pb::EndorseApplicationRequest { id })
                .await?
                .into_inner()
                .application;
            print_application(application, json)?;
        }
        SchoolCommand::Return { id, reason } => {
            let application = intake
                .return_application(pb::ReturnApplicationRequest { id, reason })
                .await?
                .into_inner()
                .application;
            print_application(application, json)?;
        }
        SchoolCommand::Applications { status } => {
            let status = match status {
                None => pb::ApplicationStatus::Unspecified,
                Some(text) => pb::ApplicationStatus::from_str_name(&format!(
                    "APPLICATION_STATUS_{}",
                    text.to_uppercase()
                ))
                .ok_or_else(|| anyhow::anyhow!("--status {text:?} is not an application status"))?,
            };
            let mut applications = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = intake
                    .list_applications(pb::ListApplicationsRequest {
                        status: status as i32,
                        page_size: 0,
                        page_token,
                    })
                    .await?
                    .into_inner();
                applications.extend(page.applications);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            print(
                applications.iter().map(application_json).collect(),
                APPLICATION_COLUMNS,
                json,
            )?;
        }
        SchoolCommand::Approve { id } => {
            let school = authority
                .approve_application(pb::ApproveApplicationRequest { id })
                .await?
                .into_inner()
                .school;
            print_school(school, json)?;
        }
        SchoolCommand::Reject { id, reason } => {
            let application = authority
                .reject_application(pb::RejectApplicationRequest { id, reason })
                .await?
                .into_inner()
                .application;
            print_application(application, json)?;
        }
        SchoolCommand::Submitted => {
            let applications = authority
                .list_submitted_applications(pb::ListSubmittedApplicationsRequest::default())
                .await?
                .into_inner()
                .applications;
            print(
                applications.iter().map(application_json).collect(),
                APPLICATION_COLUMNS,
                json,
            )?;
        }
        SchoolCommand::Rename { code, name, step } => {
            let school = authority
                .rename_school(pb::RenameSchoolRequest {
                    code,
                    new_name: name,
                    effective_date: step.effective,
                    reason: step.reason,
                })
                .await?
                .into_inner()
                .school;
            print_school(school, json)?;
        }
        SchoolCommand::Merge {
            codes,
            keep,
            profile: profile_args,
            step,
        } => {
            let school = authority
                .merge_schools(pb::MergeSchoolsRequest {
                    predecessors: codes,
                    merged: Some(profile(profile_args)?),
                    keep_code: keep,
                    effective_date: step.effective,
                    reason: step.reason,
                })
                .await?
                .into_inner()
                .school;
            print_school(school, json)?;
        }
        SchoolCommand::ChangeCategory {
            code,
            category,
            stage,
            step,
        } => {
            let school = authority
                .change_category(pb::ChangeCategoryRequest {
                    code,
                    new_category: category,
                    stages: stages(&stage)?,
                    effective_date: step.effective,
                    reason: step.reason,
                })
                .await?
                .into_inner()
                .school;
            print_school(school, json)?;
        }
        SchoolCommand::Close { code, step } => {
            let school = authority
                .close_school(pb::CloseSchoolRequest {
                    code,
                    effective_date: step.effective,
                    reason: step.reason,
                })
                .await?
                .into_inner()
                .school;
            print_school(school, json)?;
        }
        SchoolCommand::Reopen { code, step } => {
            let school = authority
                .reopen_school(pb::ReopenSchoolRequest {
                    code,
                    effective_date: step.effective,
                    reason: step.reason,
                })
                .await?
                .into_inner()
                .school;
            print_school(school, json)?;
        }
        SchoolCommand::Publish { note } => {
            let publication = authority
                .publish(pb::PublishRequest { note })
                .await?
                .into_inner()
                .publication
                .unwrap_or_default();
            if !json {
                println!(
                    "published version {} with {} changes",
                    publication.version,
                    publication.changes.len()
                );
            }
            print(
                publication.changes.iter().map(change_json).collect(),
                CHANGE_COLUMNS,
                json,
            )?;
        }
        SchoolCommand::Sync => {
            let report = intake
                .sync_replica(pb::SyncReplicaRequest {})
                .await?
                .into_inner();
            let row = json!({
                "replica_version": report.replica_version,
                "publications_applied": report.publications_applied,
                "decisions_applied": report.decisions_applied,
                "applications_submitted": report.applications_submitted,
            });
            print(
                vec![row],
                &[
                    "replica_version",
                    "publications_applied",
                    "decisions_applied",
                    "applications_submitted",
                ],
                json,
            )?;
        }
        SchoolCommand::Show { code, national } => {
            let school = if national {
                let request = pb::SchoolAuthorityGetSchoolRequest { code };
                authority.get_school(request).await?.into_inner().school
            } else {
                let request = pb::GetSchoolRequest { code };
                intake.get_school(request).await?.into_inner().school
            };
            match (json, school) {
                (false, Some(school)) => {
                    let mut table = Table::new();
                    table.load_preset(UTF8_FULL_CONDENSED);
                    if let Value::Object(fields) = school_json(&school) {
                        for (key, value) in fields {
                            table.add_row([key.replace('_', " "), cell(&value)]);
                        }
                    }
                    println!("{table}");
                }
                (_, school) => print_school(school, true)?,
            }
        }
        SchoolCommand::List {
            division,
            name,
            category,
            all,
            national,
        } => {
            let mut schools = Vec::new();
            let mut page_token = String::new();
            loop {
                let request = pb::ListSchoolsRequest {
                    division: division.clone(),
                    name_contains: name.clone(),
                    category: category.clone(),
                    include_void: all,
                    page_size: 1000,
                    page_token,
                };
                let (page, next_page_token) = if national {
                    let request = pb::SchoolAuthorityListSchoolsRequest {
                        division: request.division,
                        name_contains: request.name_contains,
                        category: request.category,
                        include_void: request.include_void,
                        page_size: request.page_size,
                        page_token: request.page_token,
                    };
                    let page = authority.list_schools(request).await?.into_inner();
                    (page.schools, page.next_page_token)
                } else {
                    let page = intake.list_schools(request).await?.into_inner();
                    (page.schools, page.next_page_token)
                };
                schools.extend(page);
                if next_page_token.is_empty() {
                    break;
                }
                page_token = next_page_token;
            }
            print(
                schools.iter().map(school_json).collect(),
                SCHOOL_COLUMNS,
                json,
            )?;
        }
        SchoolCommand::Lineage { code, national } => {
            let links = if national {
                let request = pb::SchoolAuthorityGetLineageRequest { code };
                authority.get_lineage(request).await?.into_inner().links
            } else {
                let request = pb::GetLineageRequest { code };
                intake.get_lineage(request).await?.into_inner().links
            };
            let rows = links
                .iter()
                .map(|l| {
                    json!({
                        "predecessor": l.predecessor,
                        "successor": l.successor,
                        "kind": word(l.kind().as_str_name(), "LINEAGE_KIND_"),
                        "effective_date": l.effective_date,
                    })
                })
                .collect();
            print(
                rows,
                &["predecessor", "successor", "kind", "effective_date"],
                json,
            )?;
        }
        SchoolCommand::Publications { after } => {
            let answer = authority
                .list_publications(pb::ListPublicationsRequest {
                    after_version: after,
                    limit: 0,
                    // Counting is all this listing does with the changes.
                    max_changes: 0,
                    after_change_id: 0,
                })
                .await?
                .into_inner();
            let rows = answer
                .publications
                .iter()
                .map(|p| {
                    json!({
                        "version": p.version,
                        "published_at": p.published_at,
                        "note": p.note,
                        // A large publication's first page only: "5000+".
                        "changes": if p.complete {
                            p.changes.len().to_string()
                        } else {
                            format!("{}+", p.changes.len())
                        },
                    })
                })
                .collect();
            print(rows, &["version", "published_at", "note", "changes"], json)?;
        }
        SchoolCommand::Diff { from, to } => {
            let mut changes = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = authority
                    .diff(pb::DiffRequest {
                        from_version: from,
                        to_version: to,
                        page_size: 0,
                        page_token,
                    })
                    .await?
                    .into_inner();
                changes.extend(page.changes);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            print(
                changes.iter().map(change_json).collect(),
                CHANGE_COLUMNS,
                json,
            )?;
        }
    }
    Ok(())
}
