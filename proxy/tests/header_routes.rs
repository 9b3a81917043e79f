//! Managed header routes (a WeirRoute's `setHeaderRoute`) through the real proxy: matching
//! requests reach the canary whatever the weight, others follow the weighted split, and a
//! table pushed without the routes takes them away at once. (The decision itself is
//! table-tested in weir-config.)

use weir_proxy::testkit::{Upstream, Weir, H1};

fn table(stable: &Upstream, canary: &Upstream, version: &str, weight: u32, routes: &str) -> String {
    format!(
        "schema: weir/v1
version: {version}
hosts:
  - host: app.test
    rules:
      - path: /
        backend: {{ service: stable, endpoints: [\"{}\"] }}
        canary:
          backend: {{ service: canary, endpoints: [\"{}\"] }}
          weight: {weight}
          header: X-Nginx
{routes}",
        stable.addr, canary.addr
    )
}

const ROUTES: &str = "          headerRoutes:
            - name: testers
              matches:
                - { header: x-canary, exact: \"true\" }
            - name: beta-eu
              matches:
                - { header: x-user, prefix: beta- }
                - { header: x-region, regex: \"eu-(west|north)\" }
";

async fn who(conn: &mut H1, headers: &[(&str, &str)]) -> String {
    let r = conn.get("app.test", "/", headers).await;
    assert_eq!(r.status, 200, "{headers:?}");
    r.upstream().to_owned()
}

#[tokio::test]
async fn matching_requests_reach_the_canary_and_others_follow_the_weight() {
    let stable = Upstream::start("stable").await;
    let canary = Upstream::start("canary").await;
    let weir = Weir::with(&table(&stable, &canary, "routes-1", 0, ROUTES)).await;
    let mut conn = H1::connect(weir.data).await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("X-Canary", "true")], "canary"),
        (&[("X-Canary", "false")], "stable"),
        (&[("X-Canary", "TRUE")], "stable"),
        (&[], "stable"),
        (&[("X-User", "beta-9"), ("X-Region", "eu-west")], "canary"),
        (&[("X-User", "beta-9")], "stable"),
        (&[("X-User", "beta-9"), ("X-Region", "eu-west-1")], "stable"),
        (&[("X-User", "gamma-9"), ("X-Region", "eu-north")], "stable"),
        // Before the nginx header stage: `X-Nginx: never` does not win over a route.
        (&[("X-Canary", "true"), ("X-Nginx", "never")], "canary"),
        (&[("X-Nginx", "always")], "canary"),
    ];
    for (headers, want) in cases {
        for _ in 0..5 {
            assert_eq!(who(&mut conn, headers).await, *want, "{headers:?}");
        }
    }

    // At weight 100 a request no route matches goes to the canary too; a table without the
    // routes (RemoveManagedRoutes) sends X-Canary requests by weight again, at once.
    let put = weir.put_config(&table(&stable, &canary, "routes-2", 0, "")).await;
    assert_eq!(put.status, 200, "{}", put.text());
    for _ in 0..10 {
        assert_eq!(who(&mut conn, &[("X-Canary", "true")]).await, "stable");
    }
    let put = weir.put_config(&table(&stable, &canary, "routes-3", 100, ROUTES)).await;
    assert_eq!(put.status, 200, "{}", put.text());
    for _ in 0..10 {
        assert_eq!(who(&mut conn, &[]).await, "canary");
    }
    drop(conn);
    weir.stop().await;
}

#[tokio::test]
async fn a_bad_header_route_is_refused_with_its_field_and_the_old_table_stays() {
    let stable = Upstream::start("stable").await;
    let canary = Upstream::start("canary").await;
    let weir = Weir::with(&table(&stable, &canary, "good", 0, ROUTES)).await;
    let bad =
        "          headerRoutes:\n            - { name: t, matches: [{ header: x-a, regex: \"(\" }] }\n";
    let put = weir.put_config(&table(&stable, &canary, "bad", 0, bad)).await;
    assert_eq!(put.status, 400);
    assert!(
        put.text().contains("hosts[0].rules[0].canary.headerRoutes[0].matches[0].regex"),
        "{}",
        put.text()
    );
    let mut conn = H1::connect(weir.data).await;
    assert_eq!(who(&mut conn, &[("X-Canary", "true")]).await, "canary", "the good table still serves");
    drop(conn);
    weir.stop().await;
}
