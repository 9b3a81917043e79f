// Tests of header and mirror route checks and their precedence order.
package router

import (
	"strings"
	"testing"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
)

var managed = []string{"testers", "mirror-api", "beta"}

func TestHeaderRouteFromRefusesBadMatchesNamingTheField(t *testing.T) {
	cases := []struct {
		name  string
		step  v1alpha1.SetHeaderRoute
		field string
	}{
		{"unmanaged name", v1alpha1.SetHeaderRoute{Name: "other", Match: []v1alpha1.HeaderRoutingMatch{{HeaderName: "X-Canary", HeaderValue: &v1alpha1.StringMatch{Exact: "true"}}}}, `setHeaderRoute.name: "other" is not listed`},
		{"no name", v1alpha1.SetHeaderRoute{}, "setHeaderRoute.name: required"},
		{"empty header name", v1alpha1.SetHeaderRoute{Name: "testers", Match: []v1alpha1.HeaderRoutingMatch{{HeaderValue: &v1alpha1.StringMatch{Exact: "true"}}}}, "setHeaderRoute.match[0].headerName: empty header name"},
		{"header name with space", v1alpha1.SetHeaderRoute{Name: "testers", Match: []v1alpha1.HeaderRoutingMatch{{HeaderName: "X Canary", HeaderValue: &v1alpha1.StringMatch{Exact: "true"}}}}, "not a valid header name"},
		{"no value", v1alpha1.SetHeaderRoute{Name: "testers", Match: []v1alpha1.HeaderRoutingMatch{{HeaderName: "X-Canary"}}}, "match[0].headerValue: required"},
		{"empty value", v1alpha1.SetHeaderRoute{Name: "testers", Match: []v1alpha1.HeaderRoutingMatch{{HeaderName: "X-Canary", HeaderValue: &v1alpha1.StringMatch{}}}}, "set exactly one of exact, prefix, regex"},
		{"two forms", v1alpha1.SetHeaderRoute{Name: "testers", Match: []v1alpha1.HeaderRoutingMatch{{HeaderName: "X-Canary", HeaderValue: &v1alpha1.StringMatch{Exact: "a", Prefix: "a"}}}}, "set exactly one of"},
		{"regex that does not compile", v1alpha1.SetHeaderRoute{Name: "testers", Match: []v1alpha1.HeaderRoutingMatch{
			{HeaderName: "X-Canary", HeaderValue: &v1alpha1.StringMatch{Exact: "true"}},
			{HeaderName: "User-Agent", HeaderValue: &v1alpha1.StringMatch{Regex: "(firefox"}}}}, "match[1].headerValue.regex: does not compile"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := HeaderRouteFrom(&tc.step, managed)
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error = %v, want one containing %q", err, tc.field)
			}
		})
	}
}

func TestHeaderRouteFromLowerCasesNamesAndKeepsEveryMatch(t *testing.T) {
	route, err := HeaderRouteFrom(&v1alpha1.SetHeaderRoute{Name: "testers", Match: []v1alpha1.HeaderRoutingMatch{
		{HeaderName: "X-Canary", HeaderValue: &v1alpha1.StringMatch{Exact: "true"}},
		{HeaderName: "User-Agent", HeaderValue: &v1alpha1.StringMatch{Regex: ".*Firefox.*"}},
	}}, managed)
	if err != nil {
		t.Fatal(err)
	}
	want := []HeaderMatch{{"x-canary", StringMatch{Exact: "true"}}, {"user-agent", StringMatch{Regex: ".*Firefox.*"}}}
	if len(route.Matches) != 2 || route.Matches[0] != want[0] || route.Matches[1] != want[1] {
		t.Fatalf("matches = %+v, want %+v", route.Matches, want)
	}
}

func TestHeaderRouteWithoutMatchesMeansRemove(t *testing.T) {
	route, err := HeaderRouteFrom(&v1alpha1.SetHeaderRoute{Name: "testers"}, managed)
	if err != nil || route != nil {
		t.Fatalf("route, err = %+v, %v; want nil, nil", route, err)
	}
}

func TestMirrorRouteFromRefusesWhatWeirCannotMatch(t *testing.T) {
	pct := func(p int32) *int32 { return &p }
	get := &v1alpha1.StringMatch{Exact: "GET"}
	cases := []struct {
		name  string
		step  v1alpha1.SetMirrorRoute
		field string
	}{
		{"percentage over 100", v1alpha1.SetMirrorRoute{Name: "mirror-api", Percentage: pct(150), Match: []v1alpha1.RouteMatch{{Method: get}}}, "setMirrorRoute.percentage: 150 is not within 0..100"},
		{"negative percentage", v1alpha1.SetMirrorRoute{Name: "mirror-api", Percentage: pct(-1), Match: []v1alpha1.RouteMatch{{Method: get}}}, "setMirrorRoute.percentage: -1"},
		{"method by prefix", v1alpha1.SetMirrorRoute{Name: "mirror-api", Match: []v1alpha1.RouteMatch{{Method: &v1alpha1.StringMatch{Prefix: "G"}}}}, "match[0].method: weir matches a method exactly"},
		{"path by regex", v1alpha1.SetMirrorRoute{Name: "mirror-api", Match: []v1alpha1.RouteMatch{{Path: &v1alpha1.StringMatch{Regex: "/api.*"}}}}, "match[0].path: weir matches a path by prefix"},
		{"path without slash", v1alpha1.SetMirrorRoute{Name: "mirror-api", Match: []v1alpha1.RouteMatch{{Path: &v1alpha1.StringMatch{Prefix: "api"}}}}, "starting with /"},
		{"empty header name", v1alpha1.SetMirrorRoute{Name: "mirror-api", Match: []v1alpha1.RouteMatch{{Headers: map[string]v1alpha1.StringMatch{"": {Exact: "1"}}}}}, `match[0].headers[""]: empty header name`},
		{"header regex that does not compile", v1alpha1.SetMirrorRoute{Name: "mirror-api", Match: []v1alpha1.RouteMatch{{Method: get}, {Headers: map[string]v1alpha1.StringMatch{"X-Debug": {Regex: "[a-"}}}}}, `match[1].headers["X-Debug"].regex: does not compile`},
		{"unmanaged", v1alpha1.SetMirrorRoute{Name: "nope", Match: []v1alpha1.RouteMatch{{Method: get}}}, `"nope" is not listed`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := MirrorRouteFrom(&tc.step, managed)
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error = %v, want one containing %q", err, tc.field)
			}
		})
	}
}

func TestMirrorRouteDefaultsToAllAndSortsHeaders(t *testing.T) {
	route, err := MirrorRouteFrom(&v1alpha1.SetMirrorRoute{Name: "mirror-api", Match: []v1alpha1.RouteMatch{{
		Method:  &v1alpha1.StringMatch{Exact: "get"},
		Path:    &v1alpha1.StringMatch{Prefix: "/api"},
		Headers: map[string]v1alpha1.StringMatch{"X-B": {Exact: "1"}, "X-A": {Prefix: "2"}},
	}}}, managed)
	if err != nil {
		t.Fatal(err)
	}
	m := route.Matches[0]
	if route.Percentage != 100 || m.Method != "GET" || m.PathPrefix != "/api" || len(m.Headers) != 2 || m.Headers[0].Header != "x-a" || m.Headers[1].Header != "x-b" {
		t.Fatalf("route = %+v", route)
	}
}

func TestRoutesFollowManagedRoutesOrderWhateverTheStepOrder(t *testing.T) {
	route := func(name string) *HeaderRoute {
		return &HeaderRoute{Name: name, Matches: []HeaderMatch{{"x-canary", StringMatch{Exact: name}}}}
	}
	cases := []struct {
		name  string
		steps []string
		want  string
	}{
		{"in order", []string{"testers", "beta"}, "testers,beta"},
		{"reversed", []string{"beta", "testers"}, "testers,beta"},
		{"set twice", []string{"beta", "testers", "beta"}, "testers,beta"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var routes []HeaderRoute
			for _, s := range tc.steps {
				routes = withHeaderRoute(routes, s, route(s), managed)
			}
			var got []string
			for _, r := range routes {
				got = append(got, r.Name)
			}
			if strings.Join(got, ",") != tc.want {
				t.Fatalf("order = %v, want %s", got, tc.want)
			}
		})
	}
}
