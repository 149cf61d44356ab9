"""A Python client generated from proto/ with grpcio-tools, driving a running server.

Usage: python3 tests/polyglot/client.py HOST:PORT

It proves the .proto files compile for another language and that a generated client can
run a whole promotion: create, gate, promote, stream progress, read the outcome.
"""

import importlib.resources
import pathlib
import sys
import tempfile
import uuid

import grpc
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROTOS = sorted(str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto").rglob("*.proto"))


def generate(out: pathlib.Path) -> None:
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    args = ["protoc", f"-I{ROOT / 'proto'}", f"-I{well_known}", f"--python_out={out}", f"--grpc_python_out={out}"]
    if protoc.main(args + PROTOS) != 0:
        raise SystemExit("protoc failed")


def main(address: str) -> None:
    out = pathlib.Path(tempfile.mkdtemp())
    generate(out)
    sys.path.insert(0, str(out))
    from pipelines.v1 import (  # noqa: E402  (generated just above)
        app_service_pb2 as apps,
        app_service_pb2_grpc as apps_grpc,
        coupling_service_pb2 as couplings,
        coupling_service_pb2_grpc as couplings_grpc,
        pipeline_service_pb2 as pipelines,
        pipeline_service_pb2_grpc as pipelines_grpc,
        promotion_service_pb2 as promotions,
        promotion_service_pb2_grpc as promotions_grpc,
        release_service_pb2 as releases,
        release_service_pb2_grpc as releases_grpc,
        resources_pb2 as resources,
    )

    channel = grpc.insecure_channel(address)
    pipeline_stub = pipelines_grpc.PipelineServiceStub(channel)
    app_stub = apps_grpc.AppServiceStub(channel)
    coupling_stub = couplings_grpc.CouplingServiceStub(channel)
    release_stub = releases_grpc.ReleaseServiceStub(channel)
    promotion_stub = promotions_grpc.PromotionServiceStub(channel)
    checks = 0

    name = "py-" + uuid.uuid4().hex[:8]
    pipeline = pipeline_stub.CreatePipeline(pipelines.CreatePipelineRequest(name=name))
    assert pipeline.name == name
    checks += 1

    try:
        pipeline_stub.CreatePipeline(pipelines.CreatePipelineRequest(name="Not Valid"))
        raise AssertionError("an invalid name was accepted")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
        assert "name" in error.details()
    checks += 1

    dev, staging = f"{name}-dev", f"{name}-stg"
    for app in (dev, staging):
        app_stub.CreateApp(apps.CreateAppRequest(name=app))
    coupling_stub.CreateCoupling(couplings.CreateCouplingRequest(app=dev, pipeline=name, stage=resources.STAGE_DEVELOPMENT))
    coupling_stub.CreateCoupling(
        couplings.CreateCouplingRequest(
            app=staging,
            pipeline=name,
            stage=resources.STAGE_STAGING,
            required_status_checks=resources.RequiredStatusChecks(contexts=["ci/unit"]),
        )
    )
    release = release_stub.CreateRelease(releases.CreateReleaseRequest(app=dev, image="registry/py:1"))
    assert release.version == 1 and release.status == resources.RELEASE_STATE_SUCCEEDED
    checks += 1

    request = promotions.CreatePromotionRequest(pipeline=name, source_app=dev)
    try:
        promotion_stub.CreatePromotion(request)
        raise AssertionError("an unmet check did not block")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
        assert "ci/unit" in error.details()
    checks += 1

    release_stub.CreateReleaseStatus(
        releases.CreateReleaseStatusRequest(
            app=dev, release_id=release.id, context="ci/unit", name="Unit", state=resources.STATUS_STATE_SUCCESS
        )
    )
    created = promotion_stub.CreatePromotion(request)
    assert created.WhichOneof("result") == "promotion"
    events = list(promotion_stub.WatchPromotion(promotions.WatchPromotionRequest(id=created.promotion.id), timeout=30))
    assert [e.sequence for e in events] == list(range(1, len(events) + 1)), events
    assert events[-1].type == promotions.EVENT_TYPE_PROMOTION_FINISHED
    assert events[-1].promotion_status == promotions.PROMOTION_STATUS_SUCCESSFUL
    checks += 1

    targets = promotion_stub.ListPromotionTargets(promotions.ListPromotionTargetsRequest(id=created.promotion.id)).targets
    assert [t.app.name for t in targets] == [staging]
    assert targets[0].status == promotions.TARGET_STATUS_SUCCEEDED
    assert targets[0].release.version == 1
    checks += 1

    print(f"python client: {checks} checks passed against {address}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051")
