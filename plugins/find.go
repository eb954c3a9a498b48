package plugins

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// FilePrefix is how a plugin binary's name starts, so that a plugin
// directory may hold other files (like terraform-provider-*).
const FilePrefix = "voxflow-"

// Find returns the plugin binaries in dirs: executable regular files named
// FilePrefix*, sorted within each directory, directories in order. Missing
// directories are skipped, since a search path lists places that may not
// exist on every host.
func Find(dirs ...string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		entries, err := os.ReadDir(dir)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("plugin directory %s: %w", dir, err)
		}
		var found []string
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), FilePrefix) {
				continue
			}
			p := filepath.Join(dir, e.Name())
			info, err := os.Stat(p) // follows links: installed plugins are often links
			if err != nil || !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
				continue
			}
			if abs, err := filepath.Abs(p); err == nil && !seen[abs] {
				seen[abs] = true
				found = append(found, abs)
			}
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}
