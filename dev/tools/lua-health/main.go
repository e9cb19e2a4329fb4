// Command lua-health runs Argo CD health-check Lua scripts against their test cases, the way
// Argo CD runs them: gopher-lua (what Argo CD embeds), the object as the global `obj`, only the
// libraries argocd-cm scripts get by default, and a one-second deadline.
//
//	lua-health [--json] DIR...
//
// Each DIR is Argo CD's resource_customizations layout for one kind: health.lua,
// health_test.yaml (tests: - healthStatus: {status, message}, inputPath) and the input files.
// Exit 0 when every case matches, 1 when one does not, 2 when a file cannot be read.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

// HealthStatus is what a health script returns (Argo CD's health.HealthStatus).
type HealthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

type testCase struct {
	HealthStatus HealthStatus `json:"healthStatus"`
	InputPath    string       `json:"inputPath"`
}

type testFile struct {
	Tests []testCase `json:"tests"`
}

// Result is one test case's outcome.
type Result struct {
	Dir       string        `json:"dir"`
	InputPath string        `json:"inputPath"`
	Want      HealthStatus  `json:"want"`
	Got       *HealthStatus `json:"got,omitempty"`
	Error     string        `json:"error,omitempty"`
	Pass      bool          `json:"pass"`
}

// The status codes Argo CD accepts; anything else becomes Unknown, as in Argo CD.
var validStatuses = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true,
}

const invalidHealthStatus = "Lua returned an invalid health status"

// toLua converts a decoded JSON value as Argo CD's decodeValue does (numbers become LNumber).
func toLua(l *lua.LState, value interface{}) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []interface{}:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(toLua(l, item))
		}
		return arr
	case map[string]interface{}:
		tbl := l.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), toLua(l, item))
		}
		return tbl
	}
	return lua.LNil
}

// runHealth executes script with obj and returns the health status it computes.
func runHealth(script string, obj map[string]interface{}) (HealthStatus, error) {
	// argocd-cm customizations run without Lua's open libraries unless useOpenLibs is set:
	// open only what Argo CD opens for them (its "safe" os library is left out: ours need none).
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return HealthStatus{}, fmt.Errorf("opening %s: %w", lib.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return HealthStatus{}, err
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return HealthStatus{}, fmt.Errorf("expect table output from Lua script, not %s", l.Get(-1).Type())
	}
	status, statusOK := ret.RawGetString("status").(lua.LString)
	if !statusOK || !validStatuses[string(status)] {
		return HealthStatus{Status: "Unknown", Message: invalidHealthStatus}, nil
	}
	hs := HealthStatus{Status: string(status)}
	switch m := ret.RawGetString("message").(type) {
	case lua.LString:
		hs.Message = string(m)
	case *lua.LNilType:
	default:
		return HealthStatus{}, fmt.Errorf("message is a %s, not a string", m.Type())
	}
	return hs, nil
}

func readYAML(path string, into interface{}) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// runDir runs every case of one kind's directory.
func runDir(dir string) ([]Result, error) {
	script, err := os.ReadFile(filepath.Join(dir, "health.lua"))
	if err != nil {
		return nil, err
	}
	var tests testFile
	if err := readYAML(filepath.Join(dir, "health_test.yaml"), &tests); err != nil {
		return nil, err
	}
	if len(tests.Tests) == 0 {
		return nil, fmt.Errorf("%s: no tests", filepath.Join(dir, "health_test.yaml"))
	}
	results := make([]Result, 0, len(tests.Tests))
	for _, tc := range tests.Tests {
		r := Result{Dir: dir, InputPath: tc.InputPath, Want: tc.HealthStatus}
		var obj map[string]interface{}
		if err := readYAML(filepath.Join(dir, tc.InputPath), &obj); err != nil {
			return nil, err
		}
		got, err := runHealth(string(script), obj)
		if err != nil {
			r.Error = err.Error()
		} else {
			r.Got = &got
			r.Pass = got == tc.HealthStatus
		}
		results = append(results, r)
	}
	return results, nil
}

func main() {
	asJSON := flag.Bool("json", false, "print the results as one JSON document")
	flag.Usage = func() { fmt.Fprintln(os.Stderr, "usage: lua-health [--json] DIR...") }
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	var all []Result
	for _, dir := range flag.Args() {
		results, err := runDir(dir)
		if err != nil {
			fmt.Fprintf(os.Stderr, "lua-health: %v\n", err)
			os.Exit(2)
		}
		all = append(all, results...)
	}
	failed := 0
	for _, r := range all {
		if !r.Pass {
			failed++
		}
	}
	if *asJSON {
		out, _ := json.MarshalIndent(map[string]interface{}{"results": all, "passed": len(all) - failed, "failed": failed}, "", "  ")
		fmt.Println(string(out))
	} else {
		for _, r := range all {
			switch {
			case r.Error != "":
				fmt.Printf("FAIL %s/%s: %s\n", r.Dir, r.InputPath, r.Error)
			case !r.Pass:
				fmt.Printf("FAIL %s/%s: want %s %q, got %s %q\n", r.Dir, r.InputPath, r.Want.Status, r.Want.Message, r.Got.Status, r.Got.Message)
			default:
				fmt.Printf("ok   %s/%s: %s\n", r.Dir, r.InputPath, r.Got.Status)
			}
		}
		fmt.Printf("%d passed, %d failed\n", len(all)-failed, failed)
	}
	if failed > 0 {
		os.Exit(1)
	}
}
