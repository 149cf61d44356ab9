//! `pipelines.v1.PipelineService`.

use std::pin::Pin;

use tokio_stream::{wrappers::ReceiverStream, Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::{caller_of, convert, page_of, token_or_empty};
use crate::{
    error::Error,
    proto::{self, pipeline_service_server::PipelineService},
    service::{DiffRequest, Services},
};

type PipelineEventStream = Pin<Box<dyn Stream<Item = Result<proto::PipelineEvent, Status>> + Send>>;

pub struct PipelineGrpc {
    services: Services,
}

impl PipelineGrpc {
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// The diff names its fields as the REST query spells them (`from`, `to`); a gRPC client
/// sent `DiffStagesRequest`, whose fields are `from_stage` and `to_stage`.
fn with_diff_field_names(error: Error) -> Error {
    match error {
        Error::InvalidArgument(mut invalid) => {
            invalid.field = match invalid.field.as_str() {
                "from" => "from_stage".to_owned(),
                "to" => "to_stage".to_owned(),
                other => other.to_owned(),
            };
            Error::InvalidArgument(invalid)
        }
        other => other,
    }
}

#[tonic::async_trait]
impl PipelineService for PipelineGrpc {
    type WatchPipelineStream = PipelineEventStream;

    async fn watch_pipeline(
        &self,
        request: Request<proto::WatchPipelineRequest>,
    ) -> Result<Response<Self::WatchPipelineStream>, Status> {
        let request = request.into_inner();
        let items = self
            .services
            .watch_pipeline(&request.pipeline, request.after_sequence)
            .await?;
        let stream = ReceiverStream::new(items)
            .map(|item| item.map(convert::stream_item).map_err(Status::from));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn diff_stages(
        &self,
        request: Request<proto::DiffStagesRequest>,
    ) -> Result<Response<proto::DiffStagesResponse>, Status> {
        let caller = caller_of(&request)?;
        let request = request.into_inner();
        let from = convert::stage_from_proto("from_stage", request.from_stage)
            .map_err(Error::InvalidArgument)?;
        let to = match request.to_stage {
            0 => None,
            to => Some(
                convert::stage_from_proto("to_stage", to)
                    .map_err(Error::InvalidArgument)?
                    .as_str()
                    .to_owned(),
            ),
        };
        let diff = DiffRequest {
            pipeline: request.pipeline,
            from: from.as_str().to_owned(),
            to,
            source: Some(request.source).filter(|source| !source.trim().is_empty()),
        };
        let view = self
            .services
            .diff_stages(diff, &caller)
            .await
            .map_err(with_diff_field_names)?;
        Ok(Response::new(convert::stage_diff(view)))
    }

    async fn create_pipeline(
        &self,
        request: Request<proto::CreatePipelineRequest>,
    ) -> Result<Response<proto::Pipeline>, Status> {
        let caller = caller_of(&request)?;
        let request = request.into_inner();
        let view = self
            .services
            .pipelines
            .create(&request.name, &request.description, &caller)
            .await?;
        Ok(Response::new(convert::pipeline(view)))
    }

    async fn get_pipeline(
        &self,
        request: Request<proto::GetPipelineRequest>,
    ) -> Result<Response<proto::Pipeline>, Status> {
        let view = self
            .services
            .pipelines
            .get(&request.into_inner().pipeline)
            .await?;
        Ok(Response::new(convert::pipeline(view)))
    }

    async fn list_pipelines(
        &self,
        request: Request<proto::ListPipelinesRequest>,
    ) -> Result<Response<proto::ListPipelinesResponse>, Status> {
        let request = request.into_inner();
        let page = page_of(request.page_size, &request.page_token)?;
        let page = self.services.pipelines.list(&page).await?;
        Ok(Response::new(proto::ListPipelinesResponse {
            pipelines: page.items.into_iter().map(convert::pipeline).collect(),
            next_page_token: token_or_empty(page.next_page_token),
        }))
    }

    async fn update_pipeline(
        &self,
        request: Request<proto::UpdatePipelineRequest>,
    ) -> Result<Response<proto::Pipeline>, Status> {
        let caller = caller_of(&request)?;
        let request = request.into_inner();
        let view = self
            .services
            .pipelines
            .update(
                &request.pipeline,
                request.name.as_deref(),
                request.description.as_deref(),
                &caller,
            )
            .await?;
        Ok(Response::new(convert::pipeline(view)))
    }

    async fn delete_pipeline(
        &self,
        request: Request<proto::DeletePipelineRequest>,
    ) -> Result<Response<proto::Pipeline>, Status> {
        let caller = caller_of(&request)?;
        let view = self
            .services
            .pipelines
            .delete(&request.into_inner().pipeline, &caller)
            .await?;
        Ok(Response::new(convert::pipeline(view)))
    }

    async fn list_stages(
        &self,
        _request: Request<proto::ListStagesRequest>,
    ) -> Result<Response<proto::ListStagesResponse>, Status> {
        let stages = self
            .services
            .pipelines
            .stages()
            .into_iter()
            .map(|(stage, next)| proto::StageTransition {
                stage: convert::stage_to_proto(stage) as i32,
                next: next.map(|next| convert::stage_to_proto(next) as i32),
            })
            .collect();
        Ok(Response::new(proto::ListStagesResponse { stages }))
    }

    async fn list_pipeline_statuses(
        &self,
        request: Request<proto::ListPipelineStatusesRequest>,
    ) -> Result<Response<proto::ListPipelineStatusesResponse>, Status> {
        let request = request.into_inner();
        let page = page_of(request.page_size, &request.page_token)?;
        let page = self
            .services
            .pipelines
            .statuses(&request.pipeline, &page)
            .await?;
        Ok(Response::new(proto::ListPipelineStatusesResponse {
            statuses: page
                .items
                .into_iter()
                .map(|status| proto::StatusContext {
                    context: status.context,
                    name: status.name,
                })
                .collect(),
            next_page_token: token_or_empty(page.next_page_token),
        }))
    }

    async fn create_freeze(
        &self,
        request: Request<proto::CreateFreezeRequest>,
    ) -> Result<Response<proto::Freeze>, Status> {
        let caller = caller_of(&request)?;
        let new_freeze = convert::new_freeze(request.into_inner()).map_err(Error::from)?;
        let view = self.services.freezes.create(new_freeze, &caller).await?;
        Ok(Response::new(convert::freeze(view)))
    }

    async fn list_freezes(
        &self,
        request: Request<proto::ListFreezesRequest>,
    ) -> Result<Response<proto::ListFreezesResponse>, Status> {
        let request = request.into_inner();
        let page = page_of(request.page_size, &request.page_token)?;
        let page = self.services.freezes.list(&request.pipeline, &page).await?;
        Ok(Response::new(proto::ListFreezesResponse {
            freezes: page.items.into_iter().map(convert::freeze).collect(),
            next_page_token: token_or_empty(page.next_page_token),
        }))
    }

    async fn delete_freeze(
        &self,
        request: Request<proto::DeleteFreezeRequest>,
    ) -> Result<Response<proto::Freeze>, Status> {
        let caller = caller_of(&request)?;
        let request = request.into_inner();
        let view = self
            .services
            .freezes
            .lift(&request.pipeline, &request.freeze_id, &caller)
            .await?;
        Ok(Response::new(convert::freeze(view)))
    }
}
