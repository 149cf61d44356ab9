//! `pipelines.v1.PromotionService`.

use std::pin::Pin;

use tokio_stream::{wrappers::ReceiverStream, Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::{caller_of, convert, page_of, token_or_empty};
use crate::{
    error::Error,
    proto::{
        self, create_promotion_response::Result as Created,
        promotion_service_server::PromotionService,
    },
    service::{CreatedPromotion, NewPromotion, Safety, Services},
};

pub struct PromotionGrpc {
    services: Services,
}

impl PromotionGrpc {
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// The use case names the fields of a promotion request as the REST body spells them
/// (`source.app`); a gRPC client sent `CreatePromotionRequest`, whose fields are spelled
/// `source_app`, so errors name those instead.
fn with_request_field_names(error: Error) -> Error {
    match error {
        Error::InvalidArgument(mut invalid) => {
            invalid.field = request_field_name(&invalid.field);
            Error::InvalidArgument(invalid)
        }
        other => other,
    }
}

fn request_field_name(field: &str) -> String {
    match field {
        "source.app" => "source_app".to_owned(),
        "source.release" | "source.release.id" => "source_release_id".to_owned(),
        _ => match field.strip_suffix(".app") {
            Some(target) if target.starts_with("targets[") => target.to_owned(),
            _ => field.to_owned(),
        },
    }
}

fn optional(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

type EventStream = Pin<Box<dyn Stream<Item = Result<proto::PromotionEvent, Status>> + Send>>;

#[tonic::async_trait]
impl PromotionService for PromotionGrpc {
    async fn create_promotion(
        &self,
        request: Request<proto::CreatePromotionRequest>,
    ) -> Result<Response<proto::CreatePromotionResponse>, Status> {
        let caller = caller_of(&request)?;
        let request = request.into_inner();
        let created = self
            .services
            .promotions
            .create(
                NewPromotion {
                    pipeline: request.pipeline,
                    source_app: request.source_app,
                    source_release: optional(request.source_release_id),
                    targets: request.targets,
                    safety: Safety::from_flag(request.safe),
                    dry_run: request.dry_run,
                    request_id: optional(request.request_id),
                },
                &caller,
            )
            .await
            .map_err(with_request_field_names)?;
        let result = match created {
            CreatedPromotion::Created(view) | CreatedPromotion::Replayed(view) => {
                Created::Promotion(convert::promotion(view))
            }
            CreatedPromotion::Planned(plan) => Created::Plan(convert::plan(plan)),
        };
        Ok(Response::new(proto::CreatePromotionResponse {
            result: Some(result),
        }))
    }

    async fn get_promotion(
        &self,
        request: Request<proto::GetPromotionRequest>,
    ) -> Result<Response<proto::Promotion>, Status> {
        let view = self
            .services
            .promotions
            .get(&request.into_inner().id)
            .await?;
        Ok(Response::new(convert::promotion(view)))
    }

    async fn list_promotions(
        &self,
        request: Request<proto::ListPromotionsRequest>,
    ) -> Result<Response<proto::ListPromotionsResponse>, Status> {
        let request = request.into_inner();
        let page = self
            .services
            .promotions
            .list(
                Some(request.pipeline.as_str()),
                Some(u64::from(request.page_size)),
                Some(request.page_token.as_str()),
            )
            .await?;
        Ok(Response::new(proto::ListPromotionsResponse {
            promotions: page
                .promotions
                .into_iter()
                .map(convert::promotion)
                .collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn list_promotion_targets(
        &self,
        request: Request<proto::ListPromotionTargetsRequest>,
    ) -> Result<Response<proto::ListPromotionTargetsResponse>, Status> {
        let request = request.into_inner();
        let page = page_of(request.page_size, &request.page_token)?;
        let page = self.services.promotions.targets(&request.id, &page).await?;
        Ok(Response::new(proto::ListPromotionTargetsResponse {
            targets: page
                .items
                .into_iter()
                .map(convert::promotion_target)
                .collect(),
            next_page_token: token_or_empty(page.next_page_token),
        }))
    }

    async fn cancel_promotion(
        &self,
        request: Request<proto::CancelPromotionRequest>,
    ) -> Result<Response<proto::Promotion>, Status> {
        let caller = caller_of(&request)?;
        let view = self
            .services
            .promotions
            .cancel(&request.into_inner().id, &caller)
            .await?;
        Ok(Response::new(convert::promotion(view)))
    }

    async fn approve_promotion(
        &self,
        request: Request<proto::ApprovePromotionRequest>,
    ) -> Result<Response<proto::Promotion>, Status> {
        let caller = caller_of(&request)?;
        let request = request.into_inner();
        let view = self
            .services
            .promotions
            .approve(&request.id, Some(&request.comment), &caller)
            .await?;
        Ok(Response::new(convert::promotion(view)))
    }

    async fn reject_promotion(
        &self,
        request: Request<proto::RejectPromotionRequest>,
    ) -> Result<Response<proto::Promotion>, Status> {
        let caller = caller_of(&request)?;
        let request = request.into_inner();
        let view = self
            .services
            .promotions
            .reject(&request.id, Some(&request.comment), &caller)
            .await?;
        Ok(Response::new(convert::promotion(view)))
    }

    type WatchPromotionStream = EventStream;

    async fn watch_promotion(
        &self,
        request: Request<proto::WatchPromotionRequest>,
    ) -> Result<Response<Self::WatchPromotionStream>, Status> {
        let request = request.into_inner();
        let events = self
            .services
            .promotions
            .watch(&request.id, request.after_sequence)
            .await?;
        let Some(events) = events else {
            // The watcher has every event of a finished promotion: the stream ends at once.
            return Ok(Response::new(Box::pin(tokio_stream::empty())));
        };
        let stream = ReceiverStream::new(events)
            .map(|event| event.map(convert::promotion_event).map_err(Status::from));
        Ok(Response::new(Box::pin(stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::request_field_name;

    #[test]
    fn rest_field_names_become_the_request_message_fields() {
        assert_eq!(request_field_name("source.app"), "source_app");
        assert_eq!(request_field_name("source.release.id"), "source_release_id");
        assert_eq!(request_field_name("source.release"), "source_release_id");
        assert_eq!(request_field_name("targets[2].app"), "targets[2]");
        assert_eq!(request_field_name("targets"), "targets");
        assert_eq!(request_field_name("request_id"), "request_id");
    }
}
