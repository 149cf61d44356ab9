//! The OpenAPI 3.1 document of the REST gateway. The paths, parameters, bodies and
//! responses come from the handlers' annotations, so the document is generated from the
//! code that serves it; this adds what every operation shares: the error responses, with
//! the statuses of the one error mapping, and the bearer authentication.

use utoipa::{
    openapi::{
        schema::{ObjectBuilder, Schema, Type},
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
        ContentBuilder, InfoBuilder, OpenApi, Ref, RefOr, ResponseBuilder, SecurityRequirement,
    },
    PartialSchema, ToSchema,
};

use super::error::ErrorBody;
use crate::domain::{
    promotion::{EventKind, PromotionStatus, TargetStatus},
    stage::Stage,
    status::{ReleaseState, StatusState},
};

/// A string schema whose values are a domain enum's wire names, taken from the enum itself
/// so that the document lists exactly what the code accepts and answers.
macro_rules! wire_names {
    ($name:ident, $description:literal, $values:expr) => {
        #[doc = $description]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some($description))
                    .enum_values(Some($values))
                    .into()
            }
        }

        impl ToSchema for $name {}
    };
}

wire_names!(
    StageName,
    "A stage: review → development → staging → production",
    Stage::ALL.map(Stage::as_str)
);
wire_names!(
    PromotionStatusName,
    "The state of a promotion",
    PromotionStatus::ALL.map(PromotionStatus::as_str)
);
wire_names!(
    TargetStatusName,
    "The state of one target of a promotion",
    TargetStatus::ALL.map(TargetStatus::as_str)
);
wire_names!(
    StatusStateName,
    "The state of a release status (a CI result)",
    StatusState::ALL.map(StatusState::as_str)
);
wire_names!(
    ReleaseStateName,
    "The state of a release",
    ReleaseState::ALL.map(ReleaseState::as_str)
);
wire_names!(
    EventName,
    "The name of a progress event",
    EventKind::ALL.map(EventKind::as_str)
);

/// Where the document is served, without a token.
pub const PATH: &str = "/openapi.json";

/// The error statuses any operation may answer, with what they mean here.
const ERROR_RESPONSES: [(&str, &str); 10] = [
    ("400", "Malformed JSON, a missing body, or an unreadable path or query parameter"),
    ("401", "No token, or one the server does not know (UNAUTHENTICATED)"),
    ("403", "The token's role does not allow it (PERMISSION_DENIED)"),
    ("404", "Something it names does not exist (NOT_FOUND)"),
    ("405", "The path does not take this method"),
    ("409", "It already exists, its state does not allow it, or required status checks are unmet (details list them)"),
    ("413", "The body exceeds 1 MiB (RESOURCE_EXHAUSTED)"),
    ("422", "A field breaks a rule, or the body has a field the operation does not take; the message and a google.rpc.BadRequest detail name it (INVALID_ARGUMENT), or config drift (details list it)"),
    ("429", "The token's rate limit is used up; retry after Retry-After seconds (RESOURCE_EXHAUSTED, with RetryInfo)"),
    ("503", "The database is unreachable; retry (UNAVAILABLE)"),
];

/// Completes the generated document: its description, the error responses of every
/// operation, and bearer authentication everywhere except where an operation opts out.
pub fn document(mut api: OpenApi) -> OpenApi {
    api.info = InfoBuilder::new()
        .title("Pipelines REST gateway")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "The Akkeris-compatible REST gateway of the release-promotion service. Every \
             `{app}` and `{pipeline}` takes an id or a name. Calls need `Authorization: \
             Bearer <token>` (a bare token is accepted too), except `/healthz` and \
             `/openapi.json`, and every call when the server runs in protected mode.",
        ))
        .build();
    let components = api.components.get_or_insert_with(Default::default);
    components.schemas.insert(
        ErrorBody::name().into_owned(),
        <ErrorBody as PartialSchema>::schema(),
    );
    components.security_schemes.insert(
        "bearer".into(),
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    api.security = Some(vec![SecurityRequirement::new(
        "bearer",
        Vec::<String>::new(),
    )]);
    let error_body = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(ErrorBody::name())))
        .build();
    for item in api.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            for (status, meaning) in ERROR_RESPONSES {
                operation
                    .responses
                    .responses
                    .entry(status.into())
                    .or_insert_with(|| {
                        ResponseBuilder::new()
                            .description(meaning)
                            .content("application/json", error_body.clone())
                            .build()
                            .into()
                    });
            }
        }
    }
    api
}
