//! `pipelines.v1.ReleaseService`.

use tonic::{Request, Response, Status};

use super::{caller_of, convert, page_of, token_or_empty};
use crate::{
    error::Error,
    proto::{self, release_service_server::ReleaseService},
    service::{NewReleaseStatus, ReleaseStatusChanges, Services},
};

pub struct ReleaseGrpc {
    services: Services,
}

impl ReleaseGrpc {
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

#[tonic::async_trait]
impl ReleaseService for ReleaseGrpc {
    async fn find_releases(
        &self,
        request: Request<proto::FindReleasesRequest>,
    ) -> Result<Response<proto::FindReleasesResponse>, Status> {
        let releases = self
            .services
            .releases
            .with_image(&request.into_inner().image)
            .await?;
        Ok(Response::new(convert::lineage(releases)))
    }

    async fn get_release_config_vars(
        &self,
        request: Request<proto::GetReleaseConfigVarsRequest>,
    ) -> Result<Response<proto::ConfigVars>, Status> {
        let caller = caller_of(&request)?;
        let request = request.into_inner();
        let vars = self
            .services
            .releases
            .config_vars(&request.app, &request.release, &caller)
            .await?;
        Ok(Response::new(convert::visible_config_vars(vars)))
    }

    async fn create_release(
        &self,
        request: Request<proto::CreateReleaseRequest>,
    ) -> Result<Response<proto::Release>, Status> {
        let caller = caller_of(&request)?;
        let request = request.into_inner();
        let view = self
            .services
            .releases
            .create(&request.app, &request.image, &request.description, &caller)
            .await?;
        Ok(Response::new(convert::release(view)))
    }

    async fn rollback_release(
        &self,
        request: Request<proto::RollbackReleaseRequest>,
    ) -> Result<Response<proto::Release>, Status> {
        let caller = caller_of(&request)?;
        let request = request.into_inner();
        let view = self
            .services
            .releases
            .rollback(&request.app, &request.release, &caller)
            .await?;
        Ok(Response::new(convert::release(view)))
    }

    async fn get_release(
        &self,
        request: Request<proto::GetReleaseRequest>,
    ) -> Result<Response<proto::Release>, Status> {
        let request = request.into_inner();
        let view = self
            .services
            .releases
            .get(&request.app, &request.release_id)
            .await?;
        Ok(Response::new(convert::release(view)))
    }

    async fn list_releases(
        &self,
        request: Request<proto::ListReleasesRequest>,
    ) -> Result<Response<proto::ListReleasesResponse>, Status> {
        let request = request.into_inner();
        let page = page_of(request.page_size, &request.page_token)?;
        let page = self.services.releases.list(&request.app, &page).await?;
        Ok(Response::new(proto::ListReleasesResponse {
            releases: page.items.into_iter().map(convert::release).collect(),
            next_page_token: token_or_empty(page.next_page_token),
        }))
    }

    async fn create_release_status(
        &self,
        request: Request<proto::CreateReleaseStatusRequest>,
    ) -> Result<Response<proto::ReleaseStatus>, Status> {
        let caller = caller_of(&request)?;
        let request = request.into_inner();
        let state =
            Some(convert::status_state_from_proto("state", request.state).map_err(Error::from)?);
        let view = self
            .services
            .releases
            .create_status(
                &request.app,
                &request.release_id,
                NewReleaseStatus {
                    context: request.context,
                    name: request.name,
                    state,
                    description: request.description,
                    target_url: request.target_url,
                    image_url: request.image_url,
                },
                &caller,
            )
            .await?;
        Ok(Response::new(convert::release_status(view)))
    }

    async fn update_release_status(
        &self,
        request: Request<proto::UpdateReleaseStatusRequest>,
    ) -> Result<Response<proto::ReleaseStatus>, Status> {
        let caller = caller_of(&request)?;
        let request = request.into_inner();
        let state = request
            .state
            .map(|value| convert::status_state_from_proto("state", value).map(Some))
            .transpose()
            .map_err(Error::from)?;
        let view = self
            .services
            .releases
            .update_status(
                &request.app,
                &request.release_id,
                &request.status_id,
                ReleaseStatusChanges {
                    context: None,
                    name: request.name,
                    state,
                    description: request.description,
                    target_url: request.target_url,
                    image_url: request.image_url,
                },
                &caller,
            )
            .await?;
        Ok(Response::new(convert::release_status(view)))
    }

    async fn list_release_statuses(
        &self,
        request: Request<proto::ListReleaseStatusesRequest>,
    ) -> Result<Response<proto::ListReleaseStatusesResponse>, Status> {
        let request = request.into_inner();
        let page = page_of(request.page_size, &request.page_token)?;
        let view = self
            .services
            .releases
            .list_statuses(&request.app, &request.release_id, &page)
            .await?;
        Ok(Response::new(proto::ListReleaseStatusesResponse {
            state: convert::status_state_to_proto(view.state) as i32,
            statuses: view
                .statuses
                .into_iter()
                .map(convert::release_status)
                .collect(),
            next_page_token: token_or_empty(view.next_page_token),
        }))
    }
}
