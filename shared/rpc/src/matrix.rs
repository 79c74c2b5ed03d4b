//! The authorization matrix (`proto/xueji/authorization.toml`): for every RPC, which principals
//! may call it. Handlers decide, per object, for operators; the node enforces here what only the
//! certificate tells: a service may call just the RPCs its row names, and an operator's tool
//! none that only services may call.

use std::{collections::BTreeMap, sync::OnceLock};

use serde::Deserialize;
use xueji_pki::{SpiffeId, Tier};

/// The matrix as written.
const BUNDLED: &str = include_str!("../../../proto/xueji/authorization.toml");

/// The principals that are services; every other principal is an operator's.
pub const SERVICE_PRINCIPALS: &[&str] = &[
    "identity-service",
    "schools-service",
    "transfers-service",
    "stats-service",
    "national-service",
    "national-schools-service",
];

/// The matrix, one row per RPC (`package.Service/Method`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationMatrix {
    pub rpc: BTreeMap<String, Row>,
}

/// Who may call one RPC, and on what.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    /// What a call touches: student, school, application, submitted, transfer or none.
    pub object: String,
    /// The principals that may call it.
    pub allow: Vec<String>,
    /// Why, in a sentence.
    pub note: String,
}

impl AuthorizationMatrix {
    /// The matrix the node was built with.
    pub fn bundled() -> &'static Self {
        static MATRIX: OnceLock<AuthorizationMatrix> = OnceLock::new();
        MATRIX.get_or_init(|| Self::parse(BUNDLED).expect("the bundled matrix is valid"))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let matrix: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        for (method, row) in &matrix.rpc {
            if !matches!(
                row.object.as_str(),
                "student"
                    | "school"
                    | "application"
                    | "submitted"
                    | "transfer"
                    | "evidence"
                    | "status_change"
                    | "import_job"
                    | "none"
            ) {
                return Err(format!("{method}: unknown object {:?}", row.object));
            }
            if let Some(unknown) = row.allow.iter().find(|p| !is_principal(p)) {
                return Err(format!("{method}: unknown principal {unknown:?}"));
            }
        }
        Ok(matrix)
    }

    /// May a peer presenting `peer` call `method` (`/package.Service/Method`) at all? Operators'
    /// certificates may call what any operator principal may (the handler then checks the
    /// token's level, role and object); a service's, only what its row names.
    pub fn admits(&self, peer: &SpiffeId, method: &str) -> Result<(), String> {
        let key = method.trim_start_matches('/');
        let row = self
            .rpc
            .get(key)
            .ok_or_else(|| format!("{key} has no row in the authorization matrix"))?;
        let admitted = if peer.is_operator() {
            row.allow
                .iter()
                .any(|p| !SERVICE_PRINCIPALS.contains(&p.as_str()))
        } else {
            let principals = service_principals(peer);
            row.allow.iter().any(|p| principals.contains(&p.as_str()))
        };
        if admitted {
            Ok(())
        } else if peer.is_operator() {
            Err(format!(
                "{key} is called by services only, not by operators' tools"
            ))
        } else {
            Err(format!("{peer} may not call {key}"))
        }
    }
}

/// The principals every operator level and role stand for, in the matrix's order.
const OPERATOR_PRINCIPALS: &[&str] = &[
    "ministry-operator",
    "ministry-approver",
    "province-operator",
    "province-approver",
    "city-operator",
    "city-approver",
    "county-operator",
    "county-approver",
    "school-operator",
];

impl AuthorizationMatrix {
    /// The matrix as a Markdown table (docs/trust.md's trust section carries it, checked by a
    /// test): one line per RPC, who may call it and why.
    pub fn markdown(&self) -> String {
        let mut table =
            String::from("| RPC | object | who may call it | why |\n|---|---|---|---|\n");
        for (method, row) in &self.rpc {
            let operators: Vec<&str> = OPERATOR_PRINCIPALS
                .iter()
                .copied()
                .filter(|p| row.allow.iter().any(|a| a == p))
                .collect();
            let services: Vec<&str> = SERVICE_PRINCIPALS
                .iter()
                .copied()
                .filter(|p| row.allow.iter().any(|a| a == p))
                .collect();
            let mut who = Vec::new();
            if operators.len() == OPERATOR_PRINCIPALS.len() {
                who.push("every operator".to_owned());
            } else if !operators.is_empty() {
                who.push(operators.join(", "));
            }
            if !services.is_empty() {
                who.push(services.join(", "));
            }
            let short = method.trim_start_matches("xueji.");
            table.push_str(&format!(
                "| `{short}` | {} | {} | {} |\n",
                row.object,
                who.join("; "),
                row.note
            ));
        }
        table
    }
}

fn is_principal(name: &str) -> bool {
    SERVICE_PRINCIPALS.contains(&name) || OPERATOR_PRINCIPALS.contains(&name)
}

/// The service principals a certificate stands for. A node's own certificate stands for every
/// service of its tier; the national node's also for a province's, since a standalone node
/// serves both under it.
fn service_principals(peer: &SpiffeId) -> &'static [&'static str] {
    match (&peer.tier, peer.name.as_str()) {
        (Tier::Province(_), "identity") => &["identity-service"],
        (Tier::Province(_), "schools") => &["schools-service"],
        (Tier::Province(_), "transfers") => &["transfers-service"],
        (Tier::Province(_), "stats") => &["stats-service"],
        (Tier::Province(_), "node") => &[
            "identity-service",
            "schools-service",
            "transfers-service",
            "stats-service",
        ],
        (Tier::National, "national") => &["national-service"],
        (Tier::National, "schools") => &["national-schools-service"],
        (Tier::National, "node") => SERVICE_PRINCIPALS,
        _ => &[],
    }
}

/// The RPC a request is for, put into its extensions before authentication (the request's
/// path: a reference-counted copy, no allocation per request).
#[derive(Debug, Clone)]
pub struct RpcMethod(http::uri::PathAndQuery);

impl RpcMethod {
    /// `/package.Service/Method`.
    pub fn path(&self) -> &str {
        self.0.path()
    }
}

/// Tags a request with its RPC path (for [`AuthorizationMatrix::admits`]).
pub(crate) fn tag_method<B>(mut request: http::Request<B>) -> http::Request<B> {
    if let Some(path) = request.uri().path_and_query().cloned() {
        request.extensions_mut().insert(RpcMethod(path));
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str =
        "<!-- authorization matrix: generated from proto/xueji/authorization.toml -->\n";
    const END: &str = "<!-- end of the authorization matrix -->";

    /// docs/trust.md carries the matrix as it is; `XUEJI_BLESS=1` rewrites the table there.
    #[test]
    fn architecture_carries_the_matrix() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/trust.md");
        let text = std::fs::read_to_string(path).expect("docs/trust.md");
        let table = AuthorizationMatrix::bundled().markdown();
        let (Some(begin), Some(end)) = (text.find(BEGIN), text.find(END)) else {
            panic!("docs/trust.md has no authorization matrix between {BEGIN:?} and {END:?}");
        };
        let current = &text[begin + BEGIN.len()..end];
        if current != table {
            if std::env::var_os("XUEJI_BLESS").is_some() {
                let updated = format!("{}{BEGIN}{table}{}", &text[..begin], &text[end..]);
                std::fs::write(path, updated).expect("docs/trust.md written");
            } else {
                panic!(
                    "docs/trust.md's authorization matrix differs from \
                     proto/xueji/authorization.toml; rerun with XUEJI_BLESS=1 to rewrite it"
                );
            }
        }
    }

    #[test]
    fn services_call_only_their_rows_and_operators_no_service_rows() {
        let matrix = AuthorizationMatrix::bundled();
        let fujian = |name: &str| SpiffeId::in_province("35", name);
        let deliver = "/xueji.national.v1.NationalIndex/Deliver";
        assert!(matrix.admits(&fujian("identity"), deliver).is_ok());
        assert!(matrix.admits(&fujian("schools"), deliver).is_err());
        assert!(matrix.admits(&fujian("operator/cli"), deliver).is_err());
        let students = "/xueji.identity.v1.IdentityService/ListStudents";
        assert!(matrix.admits(&fujian("operator/cli"), students).is_ok());
        assert!(matrix.admits(&fujian("identity"), students).is_err());
        assert!(
            matrix
                .admits(&SpiffeId::national("node"), "/xueji.x.v1.Unknown/Call")
                .is_err(),
            "a method without a row is refused"
        );
    }
}
