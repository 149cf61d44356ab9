//! `pipelines.v1.AppService`.

use tonic::{Request, Response, Status};

use super::{caller_of, convert, page_of, token_or_empty};
use crate::{
    proto::{self, app_service_server::AppService},
    service::{ConfigVarChange, Services},
};

pub struct AppGrpc {
    services: Services,
}

impl AppGrpc {
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

#[tonic::async_trait]
impl AppService for AppGrpc {
    async fn create_app(
        &self,
        request: Request<proto::CreateAppRequest>,
    ) -> Result<Response<proto::App>, Status> {
        let caller = caller_of(&request)?;
        let view = self
            .services
            .apps
            .create(&request.into_inner().name, &caller)
            .await?;
        Ok(Response::new(convert::app(view)))
    }

    async fn get_app(
        &self,
        request: Request<proto::GetAppRequest>,
    ) -> Result<Response<proto::App>, Status> {
        let view = self.services.apps.get(&request.into_inner().app).await?;
        Ok(Response::new(convert::app(view)))
    }

    async fn list_apps(
        &self,
        request: Request<proto::ListAppsRequest>,
    ) -> Result<Response<proto::ListAppsResponse>, Status> {
        let request = request.into_inner();
        let page = page_of(request.page_size, &request.page_token)?;
        let page = self.services.apps.list(&page).await?;
        Ok(Response::new(proto::ListAppsResponse {
            apps: page.items.into_iter().map(convert::app).collect(),
            next_page_token: token_or_empty(page.next_page_token),
        }))
    }

    async fn delete_app(
        &self,
        request: Request<proto::DeleteAppRequest>,
    ) -> Result<Response<proto::App>, Status> {
        let caller = caller_of(&request)?;
        let view = self
            .services
            .apps
            .delete(&request.into_inner().app, &caller)
            .await?;
        Ok(Response::new(convert::app(view)))
    }

    async fn get_config_vars(
        &self,
        request: Request<proto::GetConfigVarsRequest>,
    ) -> Result<Response<proto::ConfigVars>, Status> {
        let caller = caller_of(&request)?;
        let vars = self
            .services
            .apps
            .config_vars(&request.into_inner().app, &caller)
            .await?;
        Ok(Response::new(convert::visible_config_vars(vars)))
    }

    async fn patch_config_vars(
        &self,
        request: Request<proto::PatchConfigVarsRequest>,
    ) -> Result<Response<proto::ConfigVars>, Status> {
        let caller = caller_of(&request)?;
        let request = request.into_inner();
        let changes = request
            .changes
            .into_iter()
            .map(|change| ConfigVarChange {
                key: change.key,
                value: change.value,
            })
            .collect();
        let vars = self
            .services
            .apps
            .patch_config_vars(&request.app, changes, &caller)
            .await?;
        Ok(Response::new(convert::config_vars(vars)))
    }
}
