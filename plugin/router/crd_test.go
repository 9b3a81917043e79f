// Keeps the CRD schema (manifests/weirroute-crd.yaml) and the Go wire types equal: every JSON
// field of WeirRoute's spec and status is in the schema and every schema property is a field.
package router

import (
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

type schemaNode struct {
	Type       string                `json:"type"`
	Properties map[string]schemaNode `json:"properties"`
	Items      *schemaNode           `json:"items"`
}

func TestCRDSchemaHasExactlyTheWireFields(t *testing.T) {
	raw, err := os.ReadFile("../manifests/weirroute-crd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Name   string
				Schema struct {
					OpenAPIV3Schema schemaNode `json:"openAPIV3Schema"`
				}
			}
		}
	}
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatalf("parsing the CRD: %v", err)
	}
	if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Name != "v1alpha1" {
		t.Fatalf("versions = %+v", crd.Spec.Versions)
	}
	root := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	var diffs []string
	compare("spec", reflect.TypeOf(RouteSpec{}), root.Properties["spec"], &diffs)
	compare("status", reflect.TypeOf(RouteStatus{}), root.Properties["status"], &diffs)
	if len(diffs) > 0 {
		t.Fatalf("schema and wire types differ:\n%s", strings.Join(diffs, "\n"))
	}
}

var timeType = reflect.TypeOf(metav1.Time{})

// compare walks a Go type and its schema node together, noting every difference under path.
func compare(path string, typ reflect.Type, node schemaNode, diffs *[]string) {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch {
	case typ == timeType:
		if node.Type != "string" {
			*diffs = append(*diffs, path+": a time must be a string")
		}
	case typ.Kind() == reflect.Struct:
		fields := map[string]reflect.Type{}
		for i := 0; i < typ.NumField(); i++ {
			name := strings.Split(typ.Field(i).Tag.Get("json"), ",")[0]
			fields[name] = typ.Field(i).Type
		}
		var names []string
		for name := range fields {
			names = append(names, name)
		}
		for name := range node.Properties {
			if _, ok := fields[name]; !ok {
				*diffs = append(*diffs, path+"."+name+": in the schema, not in the Go type")
			}
		}
		sort.Strings(names)
		for _, name := range names {
			child, ok := node.Properties[name]
			if !ok {
				*diffs = append(*diffs, path+"."+name+": in the Go type, not in the schema")
				continue
			}
			compare(path+"."+name, fields[name], child, diffs)
		}
	case typ.Kind() == reflect.Slice:
		if node.Type != "array" || node.Items == nil {
			*diffs = append(*diffs, path+": a list must be an array with items")
			return
		}
		compare(path+"[]", typ.Elem(), *node.Items, diffs)
	default:
		want := map[reflect.Kind]string{reflect.String: "string", reflect.Bool: "boolean", reflect.Int32: "integer", reflect.Int64: "integer"}[typ.Kind()]
		if node.Type != want {
			*diffs = append(*diffs, path+": schema type "+node.Type+", Go kind "+typ.Kind().String())
		}
	}
}
