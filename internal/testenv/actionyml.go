package testenv

import (
	"os"
	"testing"

	"gopkg.in/yaml.v3"
)

// ActionInputs reads the inputs of the action.yml at path and their
// defaults.
func ActionInputs(t testing.TB, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var action struct {
		Inputs map[string]struct {
			Default string `yaml:"default"`
		} `yaml:"inputs"`
	}
	if err := yaml.Unmarshal(raw, &action); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	inputs := map[string]string{}
	for name, in := range action.Inputs {
		inputs[name] = in.Default
	}
	return inputs
}
