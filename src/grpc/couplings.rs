//! `pipelines.v1.CouplingService`.

use tonic::{Request, Response, Status};

use super::{caller_of, convert, page_of, token_or_empty};
use crate::service::Page;
use crate::{
    error::Error,
    proto::{self, coupling_service_server::CouplingService},
    service::{CouplingChange, NewCoupling, Services},
};

pub struct CouplingGrpc {
    services: Services,
}

impl CouplingGrpc {
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

fn contexts_of(checks: Option<proto::RequiredStatusChecks>) -> Vec<String> {
    checks.map(|checks| checks.contexts).unwrap_or_default()
}

fn coupling_list(page: Page<crate::views::CouplingView>) -> proto::ListCouplingsResponse {
    proto::ListCouplingsResponse {
        couplings: page.items.into_iter().map(convert::coupling).collect(),
        next_page_token: token_or_empty(page.next_page_token),
    }
}

#[tonic::async_trait]
impl CouplingService for CouplingGrpc {
    async fn create_coupling(
        &self,
        request: Request<proto::CreateCouplingRequest>,
    ) -> Result<Response<proto::Coupling>, Status> {
        let caller = caller_of(&request)?;
        let request = request.into_inner();
        let stage = Some(convert::stage_from_proto("stage", request.stage).map_err(Error::from)?);
        let view = self
            .services
            .couplings
            .create(
                NewCoupling {
                    app: request.app,
                    pipeline: request.pipeline,
                    stage,
                    required_contexts: contexts_of(request.required_status_checks),
                    policy: convert::policy_change(request.promotion_policy),
                    verification: convert::verification_change(request.verification, false)?,
                },
                &caller,
            )
            .await?;
        Ok(Response::new(convert::coupling(view)))
    }

    async fn get_coupling(
        &self,
        request: Request<proto::GetCouplingRequest>,
    ) -> Result<Response<proto::Coupling>, Status> {
        let view = self
            .services
            .couplings
            .get(&request.into_inner().id)
            .await?;
        Ok(Response::new(convert::coupling(view)))
    }

    async fn list_couplings(
        &self,
        request: Request<proto::ListCouplingsRequest>,
    ) -> Result<Response<proto::ListCouplingsResponse>, Status> {
        let request = request.into_inner();
        let page = page_of(request.page_size, &request.page_token)?;
        let views = self.services.couplings.list(&page).await?;
        Ok(Response::new(coupling_list(views)))
    }

    async fn list_pipeline_couplings(
        &self,
        request: Request<proto::ListPipelineCouplingsRequest>,
    ) -> Result<Response<proto::ListCouplingsResponse>, Status> {
        let request = request.into_inner();
        let page = page_of(request.page_size, &request.page_token)?;
        let views = self
            .services
            .couplings
            .list_for_pipeline(&request.pipeline, &page)
            .await?;
        Ok(Response::new(coupling_list(views)))
    }

    async fn get_app_coupling(
        &self,
        request: Request<proto::GetAppCouplingRequest>,
    ) -> Result<Response<proto::Coupling>, Status> {
        let view = self
            .services
            .couplings
            .get_for_app(&request.into_inner().app)
            .await?;
        Ok(Response::new(convert::coupling(view)))
    }

    async fn update_coupling(
        &self,
        request: Request<proto::UpdateCouplingRequest>,
    ) -> Result<Response<proto::Coupling>, Status> {
        let caller = caller_of(&request)?;
        let request = request.into_inner();
        let change = CouplingChange {
            stage: request
                .stage
                .map(|stage| convert::stage_from_proto("stage", stage))
                .transpose()
                .map_err(Error::from)?,
            required_contexts: request.required_status_checks.map(|checks| checks.contexts),
            policy: convert::policy_change(request.promotion_policy),
            verification: convert::verification_change(
                request.verification,
                request.remove_verification,
            )?,
        };
        let view = self
            .services
            .couplings
            .update(&request.id, change, &caller)
            .await?;
        Ok(Response::new(convert::coupling(view)))
    }

    async fn delete_coupling(
        &self,
        request: Request<proto::DeleteCouplingRequest>,
    ) -> Result<Response<proto::Coupling>, Status> {
        let caller = caller_of(&request)?;
        let view = self
            .services
            .couplings
            .delete(&request.into_inner().id, &caller)
            .await?;
        Ok(Response::new(convert::coupling(view)))
    }
}
