//! The analyzer reading Ingresses from a cluster: an in-process fake API server answers
//! the LIST the analyzer sends, with the same client setup the controller uses.

use weir_controller::analyze::{analyze, from_cluster, parse_documents};
use weir_controller::annotations::catalog::Waivers;
use weir_controller::testkit::fake_api::FakeApi;

const PREFIX: &str = "nginx.ingress.kubernetes.io";

#[tokio::test]
async fn ingresses_listed_from_the_cluster_are_judged_like_files() {
    let api = FakeApi::start().await.expect("fake API");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ingress-nginx/apps/");
    for file in ["oauth2-proxy.yaml", "canary.yaml"] {
        let text = std::fs::read_to_string(format!("{path}{file}")).expect("fixture");
        for ing in parse_documents(&text).expect("YAML") {
            api.apply(&ing);
        }
    }
    // (namespace filter, Ingresses listed, refused)
    let cases = [
        (
            None,
            vec![
                "monitoring/grafana",
                "monitoring/oauth2-proxy",
                "shop/checkout",
                "shop/checkout-checkout-canary",
            ],
            vec!["monitoring/grafana"],
        ),
        (Some("shop"), vec!["shop/checkout", "shop/checkout-checkout-canary"], vec![]),
    ];
    for (namespace, listed, refused) in cases {
        let client = api.client().expect("client");
        let loaded = from_cluster(client, namespace).await.expect("list");
        assert!(loaded.iter().all(|l| l.source == "cluster"));
        let report = analyze(loaded, PREFIX, &Waivers::default());
        let names = |only_refused: bool| {
            report
                .ingresses
                .iter()
                .filter(|i| !only_refused || i.refused())
                .map(|i| format!("{}/{}", i.namespace, i.name))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(false), listed, "{namespace:?}");
        assert_eq!(names(true), refused, "{namespace:?}");
        assert_eq!(report.exit_code(), if refused.is_empty() { 0 } else { 1 });
    }
}
