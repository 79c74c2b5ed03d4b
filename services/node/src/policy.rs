//! The node's policy reload: every service's policy files read and checked again, put in force
//! only if all pass (`PolicyService.ReloadPolicy`, and SIGHUP in the `xueji` binary).

use std::sync::Arc;

use tonic::{Request, Response, Status};
use xueji_auth::{Level, Role};
use xueji_policy::{PolicyError, PolicyHook};
use xueji_proto::node::v1::{
    self as pb,
    policy_service_server::{PolicyService, PolicyServiceServer},
};

/// The policies of the node's services.
#[derive(Debug, Clone)]
pub struct NodePolicy {
    hooks: Arc<Vec<Arc<dyn PolicyHook>>>,
}

impl NodePolicy {
    pub(crate) fn new(hooks: Vec<Arc<dyn PolicyHook>>) -> Self {
        Self {
            hooks: Arc::new(hooks),
        }
    }

    /// Reads and checks every file again; puts them in force only if all pass. Answers the
    /// files now in force.
    pub fn reload(&self) -> Result<Vec<String>, PolicyError> {
        let loaded = xueji_policy::reload(&self.hooks);
        match &loaded {
            Ok(files) => tracing::info!(files = ?files, "policy reloaded"),
            Err(error) => {
                tracing::error!(%error, "policy not reloaded: the policy in force stays");
            }
        }
        loaded
    }

    pub(crate) fn into_service(self) -> PolicyServiceServer<Self> {
        PolicyServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl PolicyService for NodePolicy {
    async fn reload_policy(
        &self,
        request: Request<pb::ReloadPolicyRequest>,
    ) -> Result<Response<pb::ReloadPolicyResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        if !matches!(caller.level, Level::Province | Level::Ministry)
            || caller.role != Role::Operator
        {
            return Err(Status::permission_denied(
                "the node's policy is reloaded by a province or ministry operator",
            ));
        }
        let this = self.clone();
        // Reading files is blocking work.
        let loaded = tokio::task::spawn_blocking(move || this.reload())
            .await
            .map_err(|e| xueji_rpc::internal_status(&format!("the policy reload stopped: {e}")))?;
        match loaded {
            Ok(files) => Ok(Response::new(pb::ReloadPolicyResponse { files })),
            Err(error) => Err(Status::failed_precondition(format!(
                "the policy was not reloaded (the one in force stays): {error}"
            ))),
        }
    }
}
