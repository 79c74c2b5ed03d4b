//! What `xuejictl school` reads from its arguments: a profile and the stages a school offers.

use xueji_proto::schools::v1::{self as pb};

use super::*;

pub(super) fn stages(texts: &[String]) -> anyhow::Result<Vec<pb::StageOffered>> {
    texts
        .iter()
        .map(|text| {
            let (stage, years) = text.split_once(':').ok_or_else(|| {
                anyhow::anyhow!("--stage {text:?}: write stage:years, e.g. primary:6")
            })?;
            let stage = pb::Stage::from_str_name(&format!("STAGE_{}", stage.to_uppercase()))
                .ok_or_else(|| {
                    anyhow::anyhow!("--stage {text:?}: primary, junior, senior or special")
                })?;
            let years = years
                .parse()
                .map_err(|_| anyhow::anyhow!("--stage {text:?}: years must be a number"))?;
            Ok(pb::StageOffered {
                stage: stage as i32,
                years,
            })
        })
        .collect()
}

pub(super) fn profile(args: ProfileArgs) -> anyhow::Result<pb::SchoolProfile> {
    let operator_type = match args.operator_type.as_str() {
        "public" | "公办" => pb::OperatorType::Public,
        "private" | "民办" => pb::OperatorType::Private,
        other => anyhow::bail!("--operator-type {other:?}: public or private"),
    };
    Ok(pb::SchoolProfile {
        name: args.name,
        category: args.category,
        stages: stages(&args.stage)?,
        division: args.division,
        registry_authority: args.authority,
        operator_type: operator_type as i32,
        address: args.address,
        township: args.township,
    })
}
