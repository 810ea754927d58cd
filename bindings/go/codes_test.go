package fleets_test

// The Code constants, their names, the severities and the execution statuses against
// include/fleets.h (parsed, not copied) and against the library. codes_cgo.go already makes
// the build fail when a written-out value differs from the header's; these tests catch what
// the compiler cannot: a constant the header gained or lost, and a wrong name.

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	fleets "example.invalid/libfleets/bindings/go"
)

// headerDefines returns the integer FLEETS_* constants of include/fleets.h with the given
// prefix (e.g. "FLEETS_ERR_"), prefix stripped.
func headerDefines(t *testing.T, prefixes ...string) map[string]uint64 {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("..", "..", "include", "fleets.h"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, m := range regexp.MustCompile(`(?m)^#define\s+(FLEETS_\w+)\s+(\d+)\s*$`).FindAllStringSubmatch(string(text), -1) {
		for _, p := range prefixes {
			if strings.HasPrefix(m[1], p) {
				v, err := strconv.ParseUint(m[2], 10, 32)
				if err != nil {
					t.Fatal(err)
				}
				out[m[1]] = v
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %v constants in fleets.h", prefixes)
	}
	return out
}

// goConst is one constant of the package source: its value and its trailing comment.
type goConst struct {
	value   uint64
	comment string
}

// goConstants parses file and returns its constants of the named type.
func goConstants(t *testing.T, file, typ string) map[string]goConst {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]goConst{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != typ {
				continue
			}
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.INT {
					t.Fatalf("%s: %s is not an integer literal", file, name.Name)
				}
				v, err := strconv.ParseUint(lit.Value, 0, 32)
				if err != nil {
					t.Fatal(err)
				}
				out[name.Name] = goConst{v, strings.TrimSpace(vs.Comment.Text())}
			}
		}
	}
	return out
}

// goName is the Go spelling of a C constant's suffix: NOT_FOUND -> NotFound,
// INVALID_JSON -> InvalidJSON (initialisms stay upper case, as Go style wants).
func goName(cSuffix string) string {
	var b strings.Builder
	for _, w := range strings.Split(cSuffix, "_") {
		switch w {
		case "JSON", "TLS", "IO", "HTTP", "OK":
			b.WriteString(w)
		default:
			b.WriteString(w[:1] + strings.ToLower(w[1:]))
		}
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestCodesMatchHeader: every FLEETS_OK / FLEETS_ERR_* of the header has exactly one Code
// constant, spelled Code<Name>, of the same value, commented with the C name, whose String
// is the C name; and no Code constant is missing from the header.
func TestCodesMatchHeader(t *testing.T) {
	header := headerDefines(t, "FLEETS_OK", "FLEETS_ERR_")
	goCodes := goConstants(t, "errors.go", "Code")
	matched := map[string]bool{}
	for _, cName := range sortedKeys(header) {
		value := header[cName]
		want := "Code" + goName(strings.TrimPrefix(strings.TrimPrefix(cName, "FLEETS_ERR_"), "FLEETS_"))
		got, ok := goCodes[want]
		switch {
		case !ok:
			t.Errorf("fleets.h has %s = %d, but errors.go has no %s", cName, value, want)
			continue
		case got.value != value:
			t.Errorf("%s = %d in errors.go, %s = %d in fleets.h", want, got.value, cName, value)
		case got.comment != cName && !strings.HasPrefix(got.comment, cName+":") && !strings.HasPrefix(got.comment, cName+" "):
			t.Errorf("%s is commented %q, want it to start with %s", want, got.comment, cName)
		}
		if s := fleets.Code(value).String(); s != cName {
			t.Errorf("Code(%d).String() = %q, want %q", value, s, cName)
		}
		matched[want] = true
	}
	for _, name := range sortedKeys(goCodes) {
		if !matched[name] {
			t.Errorf("errors.go has %s = %d, which fleets.h does not define", name, goCodes[name].value)
		}
	}
}

// TestCodeNamesMatchLibrary: fleets_result_name agrees with Code.String for every code.
func TestCodeNamesMatchLibrary(t *testing.T) {
	for _, value := range headerDefines(t, "FLEETS_OK", "FLEETS_ERR_") {
		c := fleets.Code(value)
		if lib := fleets.ResultName(c); lib != c.String() {
			t.Errorf("fleets_result_name(%d) = %q, Code.String() = %q", value, lib, c.String())
		}
	}
	if lib := fleets.ResultName(4242); lib != "FLEETS_ERR_UNKNOWN" {
		t.Errorf("fleets_result_name(4242) = %q", lib)
	}
}

func TestSeveritiesMatchHeader(t *testing.T) {
	header := headerDefines(t, "FLEETS_SEVERITY_")
	goSev := goConstants(t, "types.go", "Severity")
	if len(goSev) != len(header) {
		t.Errorf("types.go has %d severities, fleets.h %d", len(goSev), len(header))
	}
	for _, cName := range sortedKeys(header) {
		want := "Severity" + goName(strings.TrimPrefix(cName, "FLEETS_SEVERITY_"))
		if got, ok := goSev[want]; !ok || got.value != header[cName] {
			t.Errorf("fleets.h has %s = %d; types.go has %s = %+v (present: %t)", cName, header[cName], want, got, ok)
		}
	}
}

func TestExecutionStatusesMatchHeader(t *testing.T) {
	header := headerDefines(t, "FLEETS_EXECUTION_")
	device := []fleets.ExecutionStatus{fleets.ExecutionInProgress, fleets.ExecutionSucceeded, fleets.ExecutionFailed, fleets.ExecutionRejected}
	if len(header) != len(device) {
		t.Errorf("fleets.h has %d execution statuses %v, the package sends %d", len(header), sortedKeys(header), len(device))
	}
	for _, s := range device {
		v, err := fleets.DeviceStatus(s)
		if want, ok := header["FLEETS_EXECUTION_"+string(s)]; err != nil || !ok || v != uint32(want) {
			t.Errorf("%s is sent as %d (%v); fleets.h: %d (present: %t)", s, v, err, want, ok)
		}
	}
}

// TestExecutionStatusConstantsAreTheHeaderSet: the exported ExecutionStatus constants are
// exactly the FLEETS_EXECUTION_* set (the same four names in C, Python and Go).
func TestExecutionStatusConstantsAreTheHeaderSet(t *testing.T) {
	header := headerDefines(t, "FLEETS_EXECUTION_")
	f, err := parser.ParseFile(token.NewFileSet(), "types.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "ExecutionStatus" {
				continue
			}
			for i, name := range vs.Names {
				lit := vs.Values[i].(*ast.BasicLit)
				value, _ := strconv.Unquote(lit.Value)
				if want := "Execution" + goName(value); name.Name != want {
					t.Errorf("%s = %s, want the name %s", name.Name, lit.Value, want)
				}
				got = append(got, "FLEETS_EXECUTION_"+value)
			}
		}
	}
	sort.Strings(got)
	if want := sortedKeys(header); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ExecutionStatus constants %v, fleets.h %v", got, want)
	}
}
