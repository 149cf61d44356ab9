//! Query parameters: each route accepts exactly those its `/openapi.json` operation
//! documents, each at most once. Anything else is refused before the handler runs, so no
//! route can silently ignore a filter it does not know: a client asking for one pipeline
//! and answered with all of them might delete the wrong one.
//!
//! The rules are read from the generated OpenAPI document, so the document and what the
//! gateway accepts cannot disagree, and a new route is covered the moment it is routed.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    extract::{MatchedPath, Request},
    http::Method,
    response::{IntoResponse, Response},
};
use utoipa::openapi::{
    path::{Operation, Parameter, ParameterIn},
    OpenApi,
};

use super::error::ApiError;
use crate::{domain::quoted, error::Error};

/// Routes that serve operators and tools rather than the API: they ignore query strings.
const IGNORES_QUERY: [&str; 2] = ["/healthz", "/metrics"];

/// What each operation accepts, by route template and method.
#[derive(Default)]
pub(super) struct QueryRules {
    accepted: HashMap<String, HashMap<Method, Vec<String>>>,
}

impl QueryRules {
    /// The accepted query parameters of every operation the document describes.
    pub(super) fn from_document(api: &OpenApi) -> Self {
        let mut accepted = HashMap::new();
        for (path, item) in &api.paths.paths {
            let by_method: &mut HashMap<Method, Vec<String>> =
                accepted.entry(path.clone()).or_default();
            let operations = [
                (Method::GET, &item.get),
                (Method::PUT, &item.put),
                (Method::POST, &item.post),
                (Method::DELETE, &item.delete),
                (Method::PATCH, &item.patch),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                let names = query_parameters(item.parameters.as_deref(), operation);
                by_method.insert(method, names);
            }
        }
        Self { accepted }
    }

    /// Refuses a query string that holds a parameter the operation does not document, or
    /// one given twice. A routed path the document does not describe accepts none; a
    /// method the path does not take is left for the router to answer 405.
    pub(super) fn check(&self, method: &Method, route: &str, query: &str) -> Result<(), Error> {
        if IGNORES_QUERY.contains(&route) {
            return Ok(());
        }
        // HEAD is served by the GET handler, with the same parameters.
        let method = if method == Method::HEAD {
            Method::GET
        } else {
            method.clone()
        };
        let accepted: &[String] = match self.accepted.get(route) {
            None => &[],
            Some(by_method) => match by_method.get(&method) {
                Some(names) => names,
                None => return Ok(()),
            },
        };
        let mut seen: Vec<String> = Vec::new();
        for (name, _) in form_urlencoded::parse(query.as_bytes()) {
            if !accepted.iter().any(|known| *known == name) {
                return Err(Error::invalid(
                    format!("query parameter {}", quoted(&name)),
                    format!("is not accepted: {method} {route} {}", accepts(accepted)),
                ));
            }
            if seen.iter().any(|earlier| *earlier == name) {
                return Err(Error::invalid(
                    format!("query parameter {}", quoted(&name)),
                    "is given more than once",
                ));
            }
            seen.push(name.into_owned());
        }
        Ok(())
    }
}

/// The names of an operation's query parameters, its path item's shared ones included.
fn query_parameters(shared: Option<&[Parameter]>, operation: &Operation) -> Vec<String> {
    shared
        .unwrap_or_default()
        .iter()
        .chain(operation.parameters.as_deref().unwrap_or_default())
        .filter(|parameter| parameter.parameter_in == ParameterIn::Query)
        .map(|parameter| parameter.name.clone())
        .collect()
}

/// "accepts a, b and c", or "accepts no query parameters".
fn accepts(names: &[String]) -> String {
    match names {
        [] => "accepts no query parameters".to_owned(),
        [only] => format!("accepts only {only}"),
        [rest @ .., last] => format!("accepts only {} and {last}", rest.join(", ")),
    }
}

/// The layer that applies [`QueryRules`] to every routed request.
#[derive(Clone)]
pub(super) struct RefuseUnknownQueryLayer(pub(super) Arc<QueryRules>);

impl<S> tower::Layer<S> for RefuseUnknownQueryLayer {
    type Service = RefuseUnknownQuery<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RefuseUnknownQuery {
            inner,
            rules: Arc::clone(&self.0),
        }
    }
}

/// A route wrapped by [`RefuseUnknownQueryLayer`]. A request without a query string
/// passes straight through, without an allocation.
#[derive(Clone)]
pub(super) struct RefuseUnknownQuery<S> {
    inner: S,
    rules: Arc<QueryRules>,
}

impl<S> tower::Service<Request> for RefuseUnknownQuery<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Checked<S::Future>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let query = request.uri().query().filter(|query| !query.is_empty());
        let route = request.extensions().get::<MatchedPath>();
        if let (Some(query), Some(route)) = (query, route) {
            if let Err(error) = self.rules.check(request.method(), route.as_str(), query) {
                return Checked::Refused {
                    response: Some(ApiError::Service(error).into_response()),
                };
            }
        }
        Checked::Passed {
            future: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The route's own answer, or the refusal.
    #[project = CheckedProjection]
    pub(super) enum Checked<F> {
        Passed { #[pin] future: F },
        Refused { response: Option<Response> },
    }
}

impl<F> Future for Checked<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CheckedProjection::Passed { future } => future.poll(context),
            CheckedProjection::Refused { response } => {
                Poll::Ready(Ok(response.take().unwrap_or_else(|| {
                    ApiError::Service(Error::Internal("a refusal was polled twice".into()))
                        .into_response()
                })))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> QueryRules {
        let pipelines = HashMap::from([(
            Method::GET,
            vec!["page_size".into(), "page_token".into(), "eq[name]".into()],
        )]);
        let pipeline = HashMap::from([(Method::GET, vec![])]);
        QueryRules {
            accepted: HashMap::from([
                ("/pipelines".to_owned(), pipelines),
                ("/pipelines/{pipeline}".to_owned(), pipeline),
            ]),
        }
    }

    fn refusal(method: Method, route: &str, query: &str) -> String {
        match rules().check(&method, route, query) {
            Err(Error::InvalidArgument(field)) => format!("{}: {}", field.field, field.reason),
            other => panic!("expected a refusal of {query:?}, got {other:?}"),
        }
    }

    #[test]
    fn documented_parameters_pass_percent_encoded_or_not() {
        let rules = rules();
        for query in [
            "page_size=5",
            "page_size=5&page_token=abc",
            "eq[name]=shop",
            "eq%5Bname%5D=shop",
            "",
        ] {
            assert!(
                rules.check(&Method::GET, "/pipelines", query).is_ok(),
                "{query}"
            );
        }
        assert!(rules
            .check(&Method::HEAD, "/pipelines", "page_size=1")
            .is_ok());
    }

    #[test]
    fn an_unknown_parameter_is_named_with_what_the_route_accepts() {
        assert_eq!(
            refusal(Method::GET, "/pipelines", "page_size=5&name=shop"),
            "query parameter 'name': is not accepted: GET /pipelines accepts only page_size, \
             page_token and eq[name]"
        );
        assert_eq!(
            refusal(Method::GET, "/pipelines/{pipeline}", "verbose"),
            "query parameter 'verbose': is not accepted: GET /pipelines/{pipeline} accepts no \
             query parameters"
        );
        assert_eq!(
            refusal(Method::HEAD, "/pipelines", "eq%5Bid%5D=1"),
            "query parameter 'eq[id]': is not accepted: GET /pipelines accepts only page_size, \
             page_token and eq[name]"
        );
    }

    #[test]
    fn a_parameter_given_twice_is_refused() {
        assert_eq!(
            refusal(Method::GET, "/pipelines", "eq[name]=a&eq%5Bname%5D=b"),
            "query parameter 'eq[name]': is given more than once"
        );
    }

    #[test]
    fn a_routed_path_the_document_does_not_describe_accepts_none() {
        assert_eq!(
            refusal(Method::GET, "/undocumented", "page_size=1"),
            "query parameter 'page_size': is not accepted: GET /undocumented accepts no query \
             parameters"
        );
    }

    #[test]
    fn operator_routes_and_methods_a_path_does_not_take_are_left_alone() {
        let rules = rules();
        assert!(rules.check(&Method::GET, "/healthz", "anything=1").is_ok());
        assert!(rules.check(&Method::GET, "/metrics", "anything=1").is_ok());
        // The router answers 405 for these.
        assert!(rules
            .check(&Method::PUT, "/pipelines", "anything=1")
            .is_ok());
    }

    #[test]
    fn a_long_name_is_quoted_short() {
        let name = "x".repeat(5_000);
        let message = refusal(Method::GET, "/pipelines", &format!("{name}=1"));
        assert!(message.len() < 400, "{}", message.len());
    }
}
