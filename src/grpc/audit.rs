//! `pipelines.v1.AuditService`.

use tonic::{Request, Response, Status};

use super::{convert, page_of, token_or_empty};
use crate::{
    proto::{self, audit_service_server::AuditService},
    service::{AuditQuery, Services},
};

pub struct AuditGrpc {
    services: Services,
}

impl AuditGrpc {
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

#[tonic::async_trait]
impl AuditService for AuditGrpc {
    async fn list_audit_events(
        &self,
        request: Request<proto::ListAuditEventsRequest>,
    ) -> Result<Response<proto::ListAuditEventsResponse>, Status> {
        let request = request.into_inner();
        let page = page_of(request.page_size, &request.page_token)?;
        let query = AuditQuery {
            pipeline: Some(request.pipeline),
            app: Some(request.app),
            actor: Some(request.actor),
            action: Some(request.action),
            since: convert::time_from_proto("since", request.since)
                .map_err(crate::error::Error::InvalidArgument)?,
        };
        let page = self.services.audit.list(query, &page).await?;
        Ok(Response::new(proto::ListAuditEventsResponse {
            audit_events: page.items.into_iter().map(convert::audit_event).collect(),
            next_page_token: token_or_empty(page.next_page_token),
        }))
    }
}
