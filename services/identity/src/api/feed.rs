//! ChangeFeed: the enrollment events, for the province's statistics service (the matrix admits
//! only that service's identity).

use tonic::{Request, Response, Status};
use xueji_proto::identity::v1::{
    self as pb,
    change_feed_server::{ChangeFeed, ChangeFeedServer},
};
use xueji_validation::FieldViolation;

use crate::{
    IdentityError,
    domain::feed::{FeedEvent, FeedPlace, join_rows},
    store::Store,
};

/// The most events one read returns.
const MAX_LIMIT: u32 = 10_000;

#[derive(Debug, Clone)]
pub(crate) struct FeedApi {
    store: Store,
}

impl FeedApi {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    pub(crate) fn into_service(self) -> ChangeFeedServer<Self> {
        ChangeFeedServer::new(self)
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
    }

    async fn read(
        &self,
        request: pb::ReadChangesRequest,
    ) -> Result<pb::ReadChangesResponse, IdentityError> {
        let limit = match request.limit {
            0 => 1000,
            n if n <= MAX_LIMIT => n,
            _ => {
                return Err(IdentityError::InvalidArgument(vec![FieldViolation::new(
                    "limit",
                    format!("must be at most {MAX_LIMIT}"),
                )]));
            }
        };
        let head = self.store.stamp_feed().await?;
        let rows = self.store.feed_rows(request.after_position, limit).await?;
        let read_through = rows
            .last()
            .map_or(request.after_position, |row| row.position);
        Ok(pb::ReadChangesResponse {
            events: join_rows(rows).into_iter().map(event_to_wire).collect(),
            head_position: head,
            read_through,
        })
    }
}

fn place_to_wire(place: FeedPlace) -> pb::Placement {
    pb::Placement {
        school_code: place.school,
        county: place.county,
        grade: u32::try_from(place.grade).unwrap_or_default(),
        entry_route: place.entry_route,
        gender: place.gender,
        ethnicity: place.ethnicity,
        birth_date: place.birth_date.to_string(),
        migrant_child: place.migrant,
        left_behind_child: place.left_behind,
        registry_number: place.registry_number,
        name: place.name,
        missing_fields: place.missing,
    }
}

fn event_to_wire(event: FeedEvent) -> pb::ChangeEvent {
    pb::ChangeEvent {
        position: event.position,
        student_id: event.student,
        on: event.on.to_string(),
        kind: event.kind,
        from: event.from.map(place_to_wire),
        to: event.to.map(place_to_wire),
    }
}

#[tonic::async_trait]
impl ChangeFeed for FeedApi {
    async fn read_changes(
        &self,
        request: Request<pb::ReadChangesRequest>,
    ) -> Result<Response<pb::ReadChangesResponse>, Status> {
        xueji_rpc::caller(&request)?;
        Ok(Response::new(self.read(request.into_inner()).await?))
    }
}
