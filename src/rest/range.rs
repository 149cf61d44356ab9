//! Heroku's `Range` header, honoured by every GET route whose answer is a JSON array, in
//! this one layer. Which fields a list ranges by is read from the OpenAPI document: the
//! item's `version`, `id` and `name`, those it has.
//!
//! A list that can read a range from the database answers it itself and marks its answer
//! [`Ranged`]: releases by version (one range of the `(app_id, version)` index) and
//! promotions by id (one range of the primary key; the list answers 100 by default, so
//! it must). Any other list is answered whole, as without a range, and cut here in the
//! range's order.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    body::Body,
    extract::{MatchedPath, Request},
    http::{header, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use futures_util::future::BoxFuture;

use super::error::ApiError;
use crate::domain::range::{compare_values, ListRange, RangeOrder};

/// The fields a list may range by, in the order `Accept-Ranges` names them.
const RANGE_FIELDS: [&str; 3] = ["version", "id", "name"];

/// The most bytes of a whole list cut to a range here.
const MOST_BYTES_CUT: usize = 256 * 1024 * 1024;

/// The lists, by route template, and the fields each ranges by.
#[derive(Default)]
pub(super) struct RangeRules {
    lists: HashMap<String, Arc<RangedList>>,
}

/// One list's fields, and its `Accept-Ranges` value, encoded once.
struct RangedList {
    fields: Vec<&'static str>,
    accepted: HeaderValue,
}

impl RangeRules {
    /// Every GET operation whose 200 answer is a JSON array of objects.
    pub(super) fn from_document(document: &serde_json::Value) -> Self {
        let mut lists = HashMap::new();
        let schemas = &document["components"]["schemas"];
        let Some(paths) = document["paths"].as_object() else {
            return Self::default();
        };
        for (path, item) in paths {
            let schema = &item["get"]["responses"]["200"]["content"]["application/json"]["schema"];
            if schema["type"] != "array" {
                continue;
            }
            let Some(reference) = schema["items"]["$ref"].as_str() else {
                continue;
            };
            let name = reference.rsplit('/').next().unwrap_or_default();
            let properties = &schemas[name]["properties"];
            let ranged: Vec<&'static str> = RANGE_FIELDS
                .into_iter()
                .filter(|field| !properties[*field].is_null())
                .collect();
            if ranged.is_empty() {
                continue;
            }
            let Ok(accepted) = HeaderValue::from_str(&ranged.join(", ")) else {
                continue;
            };
            let list = RangedList {
                fields: ranged,
                accepted,
            };
            lists.insert(path.clone(), Arc::new(list));
        }
        Self { lists }
    }
}

/// Marks an answer that a handler already cut to the request's range.
#[derive(Clone, Copy)]
pub(super) struct Ranged;

/// A page of a list in a range: 206 with `Content-Range`, and `Next-Range` while more
/// remain; 200 when the page holds the rest. `more` says whether items follow the page.
pub(super) fn ranged_page<S: serde::Serialize>(
    range: &ListRange,
    page: Vec<S>,
    more: bool,
    value_of: impl Fn(&S) -> String,
) -> Response {
    let bounds = page
        .first()
        .zip(page.last())
        .map(|(first, last)| (value_of(first), value_of(last)));
    let mut response = Json(page).into_response();
    if let Some((first, last)) = bounds {
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&range.content_range(&first, &last)) {
            headers.insert(header::CONTENT_RANGE, value);
        }
        if more {
            if let Ok(value) = HeaderValue::from_str(&range.next_range(&last)) {
                headers.insert("next-range", value);
            }
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        }
    }
    response.extensions_mut().insert(Ranged);
    response
}

/// The value of a list item's ranged field, as text.
fn field_value(item: &serde_json::Value, field: &str) -> Option<String> {
    match &item[field] {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// A whole list's answer cut to `range`.
async fn cut_to_range(range: &ListRange, whole: Response) -> Response {
    if whole.headers().contains_key("next-page-token") {
        // A list that pages by default must read its ranges itself, as the promotions
        // list does: a cut of one page would claim to be the whole range.
        tracing::error!("a list that answers one page at a time was cut to a range");
        return ApiError::Service(crate::error::Error::Internal(
            "this list cannot be read by that range".into(),
        ))
        .into_response();
    }
    let (parts, body) = whole.into_parts();
    let bytes = match axum::body::to_bytes(body, MOST_BYTES_CUT).await {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::warn!(%error, "a list could not be read to cut it to a range");
            return ApiError::Service(crate::error::Error::Unavailable(
                "the list could not be read whole; retry".into(),
            ))
            .into_response();
        }
    };
    let Ok(items) = serde_json::from_slice::<Vec<serde_json::Value>>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let mut keyed: Vec<(String, serde_json::Value)> = items
        .into_iter()
        .filter_map(|item| field_value(&item, &range.field).map(|value| (value, item)))
        .filter(|(value, _)| range.holds(value))
        .collect();
    keyed.sort_by(|(a, _), (b, _)| match range.order {
        RangeOrder::Asc => compare_values(a, b),
        RangeOrder::Desc => compare_values(b, a),
    });
    let more = keyed.len() > range.max as usize;
    keyed.truncate(range.max as usize);
    let page: Vec<serde_json::Value> = keyed.into_iter().map(|(_, item)| item).collect();
    let field = range.field.clone();
    let mut response = ranged_page(range, page, more, |item| {
        field_value(item, &field).unwrap_or_default()
    });
    for (name, value) in parts.headers.iter() {
        if !response.headers().contains_key(name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

/// The layer that applies [`RangeRules`] to every routed request.
#[derive(Clone)]
pub(super) struct HonourRangesLayer(pub(super) Arc<RangeRules>);

impl<S> tower::Layer<S> for HonourRangesLayer {
    type Service = HonourRanges<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HonourRanges {
            inner,
            rules: Arc::clone(&self.0),
        }
    }
}

#[derive(Clone)]
pub(super) struct HonourRanges<S> {
    inner: S,
    rules: Arc<RangeRules>,
}

/// Why a range and paging parameters cannot come together.
fn paging_with_range(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(name, _)| name)
        .find(|name| name == "page_size" || name == "page_token")
        .map(|name| name.into_owned())
}

impl<S> tower::Service<Request> for HonourRanges<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let listed = (request.method() == Method::GET || request.method() == Method::HEAD)
            .then(|| request.extensions().get::<MatchedPath>())
            .flatten()
            .and_then(|route| self.rules.lists.get(route.as_str()));
        let Some(list) = listed else {
            return Answer::Plain {
                future: self.inner.call(request),
                accepted: None,
            };
        };
        if !request.headers().contains_key(header::RANGE) {
            let accepted = Some(list.accepted.clone());
            return Answer::Plain {
                future: self.inner.call(request),
                accepted,
            };
        }
        let list = Arc::clone(list);
        let accepted = list.accepted.clone();
        let refused = |response: Response| Answer::Ranged {
            future: Box::pin(std::future::ready(Ok(response))),
        };
        let range = match request.headers().get(header::RANGE) {
            None => None,
            Some(value) => {
                let text = value.to_str().unwrap_or_default();
                match ListRange::parse(text, &list.fields) {
                    Ok(range) => Some(range),
                    Err(unusable) => {
                        let mut refusal = ApiError::UnusableRange(unusable).into_response();
                        refusal
                            .headers_mut()
                            .insert(header::ACCEPT_RANGES, accepted);
                        return refused(refusal);
                    }
                }
            }
        };
        if range.is_some() {
            if let Some(parameter) = request.uri().query().and_then(paging_with_range) {
                let refusal = crate::error::Error::invalid(
                    format!("query parameter {parameter}"),
                    "cannot be given with a Range header: page with one or the other",
                );
                return refused(ApiError::Service(refusal).into_response());
            }
        }
        if let Some(range) = &range {
            request.extensions_mut().insert(range.clone());
        }
        let answer = self.inner.call(request);
        Answer::Ranged {
            future: Box::pin(async move {
                let Ok(mut response) = answer.await;
                let cut = match range {
                    Some(range)
                        if response.status() == StatusCode::OK
                            && response.extensions().get::<Ranged>().is_none() =>
                    {
                        cut_to_range(&range, response).await
                    }
                    _ => response,
                };
                response = cut;
                response
                    .headers_mut()
                    .insert(header::ACCEPT_RANGES, accepted);
                Ok(response)
            }),
        }
    }
}

pin_project_lite::pin_project! {
    /// A list's answer: without a `Range`, the route's own future, given `Accept-Ranges`
    /// (no allocation); with one, the boxed work of cutting it.
    #[project = AnswerProjection]
    pub(super) enum Answer<F> {
        Plain { #[pin] future: F, accepted: Option<HeaderValue> },
        Ranged { future: BoxFuture<'static, Result<Response, Infallible>> },
    }
}

impl<F> Future for Answer<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AnswerProjection::Plain { future, accepted } => {
                let Poll::Ready(Ok(mut response)) = future.poll(context) else {
                    return Poll::Pending;
                };
                if let Some(accepted) = accepted.take() {
                    response
                        .headers_mut()
                        .insert(header::ACCEPT_RANGES, accepted);
                }
                Poll::Ready(Ok(response))
            }
            AnswerProjection::Ranged { future } => future.as_mut().poll(context),
        }
    }
}
