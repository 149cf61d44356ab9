//! `GET /openapi.json`: an OpenAPI 3.1 document generated from the REST handlers, open to
//! all, describing every path with its error responses. CI also runs schemathesis against
//! it (see `.ci/run`).

use reqwest::Method;
use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_openapi_document_describes_every_path_and_needs_no_token() {
    let app = spawn_app().await;
    app.create_token("ops", "admin").await;
    let (status, document) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, 200, "open to all, even with tokens: {document}");
    assert_eq!(document["openapi"], "3.1.0");

    let paths = document["paths"].as_object().expect("paths");
    for path in [
        "/pipelines",
        "/pipelines/{pipeline}",
        "/pipeline-stages",
        "/pipelines/{pipeline}/statuses",
        "/pipelines/{pipeline}/pipeline-couplings",
        "/pipeline-couplings",
        "/pipeline-couplings/{id}",
        "/apps/{app}/pipeline-couplings",
        "/apps",
        "/apps/{app}",
        "/apps/{app}/config-vars",
        "/apps/{app}/releases",
        "/apps/{app}/releases/{release}",
        "/apps/{app}/releases/{release}/statuses",
        "/apps/{app}/releases/{release}/statuses/{status}",
        "/pipeline-promotions",
        "/pipeline-promotions/{id}",
        "/pipeline-promotions/{id}/promotion-targets",
        "/pipeline-promotions/{id}/events",
        "/pipeline-promotions/{id}/cancel",
        "/pipeline-promotions/{id}/approvals",
        "/pipeline-promotions/{id}/rejections",
        "/pipelines/{pipeline}/events",
        "/pipelines/{pipeline}/diff",
        "/releases",
        "/account",
        "/users/~",
        "/healthz",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "{path} is documented");
    }

    let create = &document["paths"]["/pipelines"]["post"];
    assert_eq!(
        create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Pipeline"
    );
    // Every operation documents the error shape under the gateway's statuses.
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            if method == "parameters" || path == "/healthz" {
                continue;
            }
            for status in ["400", "404", "422", "503"] {
                assert_eq!(
                    operation["responses"][status]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} documents {status}"
                );
            }
        }
    }
    let coupling = &document["components"]["schemas"]["Coupling"];
    let fields: Vec<&String> = coupling["properties"].as_object().unwrap().keys().collect();
    for field in [
        "id",
        "app",
        "pipeline",
        "stage",
        "required_status_checks",
        "release",
        "promotion_policy",
    ] {
        assert!(
            fields.iter().any(|f| *f == field),
            "Coupling.{field}: {fields:?}"
        );
    }
    // The Akkeris variants the gateway accepts are described too.
    let source_app =
        serde_json::to_string(&document["components"]["schemas"]["SourceAppInput"]).unwrap();
    assert!(source_app.contains("oneOf"), "{source_app}");
    let reference: &Value = &document["components"]["schemas"]["ReferenceInput"];
    assert!(reference.to_string().contains("oneOf"), "{reference}");
}
