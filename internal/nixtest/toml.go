package nixtest

import (
	"encoding"
	"reflect"
	"strings"
)

// TOMLKeys returns the dotted TOML keys of the struct v (a value or its
// type), nested sections and array-of-table elements included
// ("projects.path"): what docs and examples are checked against.
func TOMLKeys(v any) []string {
	t, ok := v.(reflect.Type)
	if !ok {
		t = reflect.TypeOf(v)
	}
	return tomlKeys(t, "")
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func tomlKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for f := range t.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		key := prefix + tag
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			ft = ft.Elem()
		}
		// A struct that parses itself from text (a size, a threshold) is
		// one key.
		if ft.Kind() == reflect.Struct && !ft.Implements(textUnmarshaler) && !reflect.PointerTo(ft).Implements(textUnmarshaler) {
			keys = append(keys, tomlKeys(ft, key+".")...)
			continue
		}
		keys = append(keys, key)
	}
	return keys
}
