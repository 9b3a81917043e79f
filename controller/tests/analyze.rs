//! `weir-controller analyze` run as a binary on real-world-shaped Ingresses
//! (`tests/fixtures/ingress-nginx/`): its report, its JSON and its exit codes.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixtures(rel: &str) -> String {
    let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", rel].iter().collect();
    p.display().to_string()
}

fn analyze(args: &[&str]) -> (i32, String, String) {
    let Output { status, stdout, stderr } = Command::new(env!("CARGO_BIN_EXE_weir-controller"))
        .arg("analyze")
        .args(args)
        .env_remove("WEIR_ACCEPT_ANNOTATION")
        .env_remove("WEIR_ANNOTATION_PREFIX")
        .output()
        .expect("the binary runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn a_directory_of_ingresses_is_reported_per_key_and_exits_1_when_something_is_refused() {
    let (code, out, err) = analyze(&[&fixtures("ingress-nginx")]);
    assert_eq!(code, 1, "{out}{err}");
    let canary = format!(
        "shop/checkout-checkout-canary (canary)  [{}]
  honoured  canary: \"true\"
            marks the Ingress as a canary of a main Ingress
  honoured  canary-by-header: \"X-Canary\"
            header routing (`always`/`never`, or the value or pattern below)
  honoured  canary-by-header-value: \"beta,internal\"
            value dropped: contains ','; allowed are letters, digits and - . _ ~ / :; using the header's pattern or always/never rules
  honoured  canary-weight: \"20\"
            share of requests for the canary
  ignored   rewrite-target: \"/\"
            not read on a canary Ingress: the main Ingress's setting applies
",
        fixtures("ingress-nginx/apps/canary.yaml")
    );
    assert!(out.contains(&canary), "{out}");
    for line in [
        "  refused   auth-url: \"https://$host/oauth2/auth\"\n            nginx variables in auth-url are not supported; give the URL literally\n",
        "  honoured  whitelist-source-range: \"10.0.0.0/8, 192.168.0.0/16, 2001:db8::/32\"\n",
        "  unknown   whitelist-source-rage: \"10.0.0.0/8\"\n            not an ingress-nginx v1.15.1 annotation (did you mean whitelist-source-range?); ignored, as ingress-nginx does\n",
        "  honoured  proxy-body-size: \"50 mb\"\n            value dropped: is not a size like 1048576, 512k, 8m or 1g; using 1m\n",
        "  => refused: these rules would answer 503 until this is resolved: grafana.example.com/\n",
        "ops/plain  [",
        "  no nginx.ingress.kubernetes.io/ annotations\n",
        "  honoured  rewrite-target: \"/$2\"\n",
        "  honoured  use-regex: \"true\"\n",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    assert_eq!(
        out.matches("  => refused: these rules would answer 503 until this is resolved: ").count(),
        2,
        "{out}"
    );
    assert!(out.ends_with(
        "\nsummary: 11 Ingresses (1 canary), 2 would be refused; annotations: 17 honoured, 2 refused, 4 ignored, 2 unknown
refused keys: auth-url (1), configuration-snippet (1)
"
    ), "{out}");
    assert!(!out.contains("Deployment") && !out.contains("NOTES"), "other kinds and files are skipped");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn json_output_carries_every_verdict_and_the_summary() {
    let (code, out, _) = analyze(&["--output", "json", &fixtures("ingress-nginx")]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let refused: Vec<(String, bool)> = v["ingresses"]
        .as_array()
        .expect("ingresses")
        .iter()
        .map(|i| {
            (
                format!("{}/{}", i["namespace"].as_str().unwrap_or(""), i["name"].as_str().unwrap_or("")),
                i["refused"] == true,
            )
        })
        .collect();
    let want = [
        ("monitoring/grafana", true),
        ("monitoring/oauth2-proxy", false),
        ("ops/plain", false),
        ("ops/status", false),
        ("shop/admin", false),
        ("shop/api", true),
        ("shop/checkout", false),
        ("shop/checkout-checkout-canary", false),
        ("web/blog", false),
        ("web/docs", false),
        ("web/whoami", false),
    ];
    assert_eq!(refused, want.map(|(n, r)| (n.to_string(), r)));
    assert_eq!(v["ingresses"][0]["rules"], serde_json::json!(["grafana.example.com/"]));
    assert_eq!(v["ingresses"][2]["rules"], serde_json::json!(["* (default backend)"]), "ops/plain");
    let summary = &v["summary"];
    assert_eq!(summary["refused_ingresses"], 2);
    assert_eq!(
        summary["annotations"],
        serde_json::json!({"honoured": 17, "refused": 2, "ignored": 4, "unknown": 2})
    );
    assert_eq!(summary["refused_keys"]["auth-url"], 1);
    let canary = &v["ingresses"][7];
    assert_eq!(canary["canary"], true);
    let value = canary["annotations"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == "canary-by-header-value"));
    let value = value.expect("header value verdict");
    assert_eq!(
        (value["state"].as_str(), value["dropped"].as_bool(), value["used"].is_null()),
        (Some("honoured"), Some(true), true)
    );
    let weight = &canary["annotations"][3];
    assert_eq!((weight["name"].as_str(), weight["used"].as_str()), (Some("canary-weight"), Some("20")));
}

#[test]
fn a_kubectl_list_piped_to_standard_input_is_read_from_dash() {
    let list = std::fs::read(fixtures("ingress-nginx/kubectl-list.yaml")).expect("fixture");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir-controller"))
        .args(["analyze", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &list).expect("write");
    let out = child.wait_with_output().expect("exit");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("ops/plain  [stdin]\n"), "{stdout}");
    assert!(stdout.contains("ops/status  [stdin]\n  ignored   load-balance: \"ewma\"\n"), "{stdout}");
}

#[test]
fn an_ingress_class_filter_keeps_that_class_and_the_classless() {
    let (code, out, _) = analyze(&["--ingress-class", "nginx", &fixtures("ingress-nginx")]);
    assert_eq!(code, 1);
    assert!(!out.contains("web/whoami"), "{out}");
    assert!(out.contains("\nsummary: 10 Ingresses (1 canary), 2 would be refused;"), "{out}");
    let (code, out, _) = analyze(&["--ingress-class", "traefik", &fixtures("ingress-nginx")]);
    assert_eq!(code, 0);
    assert!(out.starts_with("web/whoami  ["), "{out}");
    assert!(out.contains("\nsummary: 1 Ingresses (0 canary), 0 would be refused;"), "{out}");
}

#[test]
fn nothing_refused_exits_0() {
    let (code, out, err) = analyze(&[&fixtures("ingress-nginx/kubectl-list.yaml")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("summary: 2 Ingresses (0 canary), 0 would be refused; annotations: 1 honoured, 0 refused, 2 ignored, 0 unknown\n"), "{out}");
}

#[test]
fn accepted_refusals_are_reported_as_waived() {
    let keys = "configuration-snippet";
    let (code, out, err) = analyze(&["--accept-annotation", keys, &fixtures("ingress-nginx")]);
    // What remains refused is a value no waiver covers: auth-url with an nginx variable.
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("  ignored   configuration-snippet: "), "{out}");
    assert!(out.contains("            refusal accepted by the operator (--accept-annotation): raw nginx configuration cannot be honoured"), "{out}");
    assert!(
        out.contains("1 would be refused; annotations: 17 honoured, 1 refused, 5 ignored, 2 unknown\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "  => refused: these rules would answer 503 until this is resolved: grafana.example.com/\n"
        ),
        "{out}"
    );
    // A key that is honoured cannot be accepted: there is nothing to waive.
    let (code, _, err) = analyze(&["--accept-annotation", "auth-url", &fixtures("ingress-nginx")]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn unreadable_input_exits_2_naming_the_file_and_the_reason_and_the_rest_is_still_analysed() {
    let (code, out, err) = analyze(&[&fixtures("ingress-nginx-broken")]);
    assert_eq!(code, 2, "{out}{err}");
    let broken = fixtures("ingress-nginx-broken/helm-template.yaml");
    assert!(
        err.contains(&format!(
            "weir-controller analyze: {broken}: did not find expected node content at line 5"
        )),
        "{err}"
    );
    assert!(out.contains("ops/status  [") && out.contains("1 input(s) could not be read"), "{out}");

    let (code, _, err) = analyze(&[&fixtures("no-such-file.yaml")]);
    assert_eq!(code, 2);
    assert!(err.contains("no-such-file.yaml: No such file or directory"), "{err}");
}

#[test]
fn accepting_a_key_that_is_not_refused_is_a_usage_error_exit_2() {
    let (code, _, err) = analyze(&["--accept-annotation", "proxy-body-size", &fixtures("ingress-nginx")]);
    assert_eq!(code, 2);
    assert_eq!(err.trim(), "weir-controller analyze: --accept-annotation proxy-body-size: is honoured, not refused; there is nothing to accept");
}
