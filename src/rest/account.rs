//! REST: who the caller is, as Heroku clients ask (`GET /account`, `GET /users/~`), with
//! the token's role so that the board shows only the actions the caller may take.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{extract::AuthenticatedCaller, GatewayState};
use crate::domain::access::Caller;

pub(super) fn routes() -> OpenApiRouter<GatewayState> {
    OpenApiRouter::new()
        .routes(routes!(get_account))
        .routes(routes!(get_user))
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Account {
    /// The token's stable id; `null` in protected mode.
    pub id: Option<uuid::Uuid>,
    /// The email address given with the token, else its name (`local` in protected mode).
    pub email: String,
    /// The token's name (`local` in protected mode).
    pub name: String,
    /// `read`, `write` or `admin`.
    pub role: String,
}

fn account_of(caller: &Caller) -> Account {
    let author = caller.author();
    Account {
        id: author.id,
        email: author.email,
        name: caller.display_name().to_owned(),
        role: caller.role.to_string(),
    }
}

/// The caller: the token's id, name and role.
#[utoipa::path(get, path = "/account", tag = "account",
    responses((status = 200, description = "The caller", body = Account)))]
async fn get_account(AuthenticatedCaller(caller): AuthenticatedCaller) -> Json<Account> {
    Json(account_of(&caller))
}

/// The caller, as `GET /account` answers.
#[utoipa::path(get, path = "/users/~", tag = "account",
    responses((status = 200, description = "The caller", body = Account)))]
async fn get_user(AuthenticatedCaller(caller): AuthenticatedCaller) -> Json<Account> {
    Json(account_of(&caller))
}
