// Managed header and mirror routes: Argo's setHeaderRoute / setMirrorRoute steps checked and
// turned into WeirRoute routes, and the route lists kept in managedRoutes precedence order.
package router

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
)

// managedRouteNames lists trafficRouting.managedRoutes in precedence order.
func managedRouteNames(ro *v1alpha1.Rollout) []string {
	var names []string
	for _, r := range ro.Spec.Strategy.Canary.TrafficRouting.ManagedRoutes {
		names = append(names, r.Name)
	}
	return names
}

func checkManaged(field, name string, managed []string) error {
	if name == "" {
		return &ConfigError{field + ".name", "required"}
	}
	for _, m := range managed {
		if m == name {
			return nil
		}
	}
	return &ConfigError{field + ".name", fmt.Sprintf("%q is not listed in spec.strategy.canary.trafficRouting.managedRoutes", name)}
}

// HeaderRouteFrom checks a setHeaderRoute step. A step without matches removes the route of that
// name (Argo's convention); then the returned route is nil.
func HeaderRouteFrom(step *v1alpha1.SetHeaderRoute, managed []string) (*HeaderRoute, error) {
	if err := checkManaged("setHeaderRoute", step.Name, managed); err != nil {
		return nil, err
	}
	if len(step.Match) == 0 {
		return nil, nil
	}
	route := &HeaderRoute{Name: step.Name}
	for i, m := range step.Match {
		field := fmt.Sprintf("setHeaderRoute.match[%d]", i)
		name, err := headerName(field+".headerName", m.HeaderName)
		if err != nil {
			return nil, err
		}
		if m.HeaderValue == nil {
			return nil, &ConfigError{field + ".headerValue", "required"}
		}
		value, err := stringMatch(field+".headerValue", *m.HeaderValue)
		if err != nil {
			return nil, err
		}
		route.Matches = append(route.Matches, HeaderMatch{Header: name, Value: value})
	}
	return route, nil
}

// MirrorRouteFrom checks a setMirrorRoute step; nil route (no matches) removes it. weir matches a
// method exactly and a path by prefix; other forms are refused here so the step fails visibly
// instead of a replica mirroring something else.
func MirrorRouteFrom(step *v1alpha1.SetMirrorRoute, managed []string) (*MirrorRoute, error) {
	if err := checkManaged("setMirrorRoute", step.Name, managed); err != nil {
		return nil, err
	}
	if len(step.Match) == 0 {
		return nil, nil
	}
	route := &MirrorRoute{Name: step.Name, Percentage: 100}
	if p := step.Percentage; p != nil {
		if *p < 0 || *p > 100 {
			return nil, &ConfigError{"setMirrorRoute.percentage", fmt.Sprintf("%d is not within 0..100", *p)}
		}
		route.Percentage = *p
	}
	for i, m := range step.Match {
		field := fmt.Sprintf("setMirrorRoute.match[%d]", i)
		var mm MirrorMatch
		if m.Method != nil {
			if m.Method.Prefix != "" || m.Method.Regex != "" || m.Method.Exact == "" {
				return nil, &ConfigError{field + ".method", "weir matches a method exactly: set exact only"}
			}
			if !isToken(m.Method.Exact) {
				return nil, &ConfigError{field + ".method.exact", fmt.Sprintf("%q is not an HTTP method", m.Method.Exact)}
			}
			mm.Method = strings.ToUpper(m.Method.Exact)
		}
		if m.Path != nil {
			if m.Path.Exact != "" || m.Path.Regex != "" || !strings.HasPrefix(m.Path.Prefix, "/") {
				return nil, &ConfigError{field + ".path", "weir matches a path by prefix: set prefix only, starting with /"}
			}
			mm.PathPrefix = m.Path.Prefix
		}
		for raw, v := range m.Headers {
			hf := fmt.Sprintf("%s.headers[%q]", field, raw)
			name, err := headerName(hf, raw)
			if err != nil {
				return nil, err
			}
			value, err := stringMatch(hf, v)
			if err != nil {
				return nil, err
			}
			mm.Headers = append(mm.Headers, HeaderMatch{Header: name, Value: value})
		}
		sort.Slice(mm.Headers, func(a, b int) bool { return mm.Headers[a].Header < mm.Headers[b].Header })
		route.Matches = append(route.Matches, mm)
	}
	return route, nil
}

func headerName(field, name string) (string, error) {
	if name == "" {
		return "", &ConfigError{field, "empty header name"}
	}
	if !isToken(name) {
		return "", &ConfigError{field, fmt.Sprintf("%q is not a valid header name", name)}
	}
	return strings.ToLower(name), nil
}

func stringMatch(field string, m v1alpha1.StringMatch) (StringMatch, error) {
	set := 0
	for _, v := range []string{m.Exact, m.Prefix, m.Regex} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return StringMatch{}, &ConfigError{field, "set exactly one of exact, prefix, regex"}
	}
	if m.Regex != "" {
		if _, err := regexp.Compile(m.Regex); err != nil {
			return StringMatch{}, &ConfigError{field + ".regex", fmt.Sprintf("does not compile: %v", err)}
		}
	}
	return StringMatch{Exact: m.Exact, Prefix: m.Prefix, Regex: m.Regex}, nil
}

// isToken reports whether s is an RFC 9110 token (header names and methods are tokens).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// position is a route's precedence: its index in managedRoutes (unknown names sort last).
func position(name string, managed []string) int {
	for i, m := range managed {
		if m == name {
			return i
		}
	}
	return len(managed)
}

// withHeaderRoute returns routes with the route named name replaced by route (or removed when
// route is nil), in managedRoutes order.
func withHeaderRoute(routes []HeaderRoute, name string, route *HeaderRoute, managed []string) []HeaderRoute {
	var out []HeaderRoute
	for _, r := range routes {
		if r.Name != name {
			out = append(out, r)
		}
	}
	if route != nil {
		out = append(out, *route)
	}
	sort.SliceStable(out, func(a, b int) bool { return position(out[a].Name, managed) < position(out[b].Name, managed) })
	return out
}

// withMirrorRoute is withHeaderRoute for mirror routes.
func withMirrorRoute(routes []MirrorRoute, name string, route *MirrorRoute, managed []string) []MirrorRoute {
	var out []MirrorRoute
	for _, r := range routes {
		if r.Name != name {
			out = append(out, r)
		}
	}
	if route != nil {
		out = append(out, *route)
	}
	sort.SliceStable(out, func(a, b int) bool { return position(out[a].Name, managed) < position(out[b].Name, managed) })
	return out
}
