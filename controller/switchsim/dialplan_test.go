package switchsim

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDialplanMatchesScenarios keeps the Go scenario table, the real
// switch's callgate-test context and SCENARIOS.md in step.
func TestDialplanMatchesScenarios(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "..", "dialplans")
	b, err := os.ReadFile(filepath.Join(dir, "callgate-test.xml"))
	require.NoError(t, err)
	var doc struct {
		Contexts []struct {
			Name       string `xml:"name,attr"`
			Extensions []struct {
				Name      string `xml:"name,attr"`
				Condition struct {
					Field      string `xml:"field,attr"`
					Expression string `xml:"expression,attr"`
					Actions    []struct {
						App  string `xml:"application,attr"`
						Data string `xml:"data,attr"`
					} `xml:"action"`
				} `xml:"condition"`
			} `xml:"extension"`
		} `xml:"context"`
	}
	require.NoError(t, xml.Unmarshal(b, &doc))
	require.Len(t, doc.Contexts, 1)
	require.Equal(t, "callgate-test", doc.Contexts[0].Name)

	suffixRE := regexp.MustCompile(`^\^\\\+\?\(\\d\*\)(\d{4})\$$`)
	var fromXML []Scenario
	for _, ext := range doc.Contexts[0].Extensions {
		c := ext.Condition
		require.Equal(t, "destination_number", c.Field)
		sc := Scenario{Name: ext.Name}
		if m := suffixRE.FindStringSubmatch(c.Expression); m != nil {
			sc.Suffix = m[1]
		} else {
			require.Equal(t, "^.*$", c.Expression, "only the default matches everything")
		}
		for _, a := range c.Actions {
			sc.Steps = append(sc.Steps, Step{App: a.App, Data: a.Data})
		}
		fromXML = append(fromXML, sc)
	}
	want := Scenarios()
	require.Len(t, fromXML, len(want))
	for i := range want {
		require.Equal(t, want[i].Suffix, fromXML[i].Suffix)
		require.Equal(t, want[i].Name, fromXML[i].Name)
		require.Equal(t, want[i].Steps, fromXML[i].Steps, want[i].Name)
	}

	md, err := os.ReadFile(filepath.Join(dir, "SCENARIOS.md"))
	require.NoError(t, err)
	for _, sc := range want {
		suffix := sc.Suffix
		if suffix == "" {
			suffix = "other"
		}
		var apps []string
		for _, st := range sc.Steps {
			apps = append(apps, "`"+strings.TrimSpace(st.App+" "+st.Data)+"`")
		}
		row := "| " + suffix + " | " + sc.Name + " | "
		require.Contains(t, string(md), row, "SCENARIOS.md row for %s", sc.Name)
		require.Contains(t, string(md), " | "+strings.Join(apps, ", ")+" | ", "SCENARIOS.md applications of %s", sc.Name)
	}
}
