//! `pipelines.v1.AccountService`: who the caller is.

use tonic::{Request, Response, Status};

use super::caller_of;
use crate::proto::{self, account_service_server::AccountService};

pub struct AccountGrpc;

#[tonic::async_trait]
impl AccountService for AccountGrpc {
    async fn get_account(
        &self,
        request: Request<proto::GetAccountRequest>,
    ) -> Result<Response<proto::Account>, Status> {
        let caller = caller_of(&request)?;
        let author = caller.author();
        Ok(Response::new(proto::Account {
            id: author.id.map(|id| id.to_string()).unwrap_or_default(),
            email: author.email,
            name: caller.display_name().to_owned(),
            role: caller.role.to_string(),
        }))
    }
}
