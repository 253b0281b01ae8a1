package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// The CLI's wording and exit codes are pinned by the scripts in
// testdata/script. None of them reaches a host or AWS: each stops before
// any connection, which the scripts check.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"orchestrate": func() { os.Exit(mainWithArgs(os.Args, os.Stdout, os.Stderr)) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			// No real AWS config, no metadata service, no SSH agent.
			env.Setenv("AWS_CONFIG_FILE", env.WorkDir+"/no-aws-config")
			env.Setenv("AWS_SHARED_CREDENTIALS_FILE", env.WorkDir+"/no-aws-credentials")
			env.Setenv("AWS_EC2_METADATA_DISABLED", "true")
			env.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1")
			env.Setenv("SSH_AUTH_SOCK", "")
			return nil
		},
	})
}
