//! `xuejictl policy reload`: the node reads its policy files again (the province's rules), and
//! puts them in force only if every one passes its checks.

use clap::Subcommand;
use xueji_client::OperatorChannel;
use xueji_proto::node::v1::{self as pb, policy_service_client::PolicyServiceClient};

#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Read and check every policy file again; a bad one names its line and leaves the rules in
    /// force (a province or ministry operator).
    Reload,
}

pub(crate) async fn run(
    channel: OperatorChannel,
    command: PolicyCommand,
    json: bool,
) -> anyhow::Result<()> {
    let mut client = PolicyServiceClient::new(channel);
    match command {
        PolicyCommand::Reload => {
            let loaded = client
                .reload_policy(pb::ReloadPolicyRequest {})
                .await?
                .into_inner();
            if json {
                println!("{}", serde_json::to_string_pretty(&loaded.files)?);
            } else {
                println!("policy reloaded; in force:");
                for file in &loaded.files {
                    println!("  {file}");
                }
            }
        }
    }
    Ok(())
}
