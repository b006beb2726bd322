// dockerfile-lint parses and lints a Dockerfile with BuildKit's own parser and linter (the
// checks `docker build --check` runs), offline, and lists the build context that
// .dockerignore leaves, so that tests can check the image without a Docker engine.
//
//	go run . <Dockerfile> <context dir>
//
// It prints one JSON object: {"warnings": [...], "error": "...", "instructions": [...],
// "context": [...]}. Base images are not pulled: a stand-in resolver answers every FROM with a
// linux/amd64 image config, so checks that need the real base image's metadata (its
// platform, its ENV) see that stand-in instead.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	digest "github.com/opencontainers/go-digest"
)

type warning struct {
	Rule   string `json:"rule"`
	Detail string `json:"detail"`
	Line   int32  `json:"line"`
}

type instruction struct {
	Instruction string `json:"instruction"`
	Original    string `json:"original"`
	Line        int    `json:"line"`
}

type report struct {
	Warnings     []warning     `json:"warnings"`
	Error        string        `json:"error,omitempty"`
	Instructions []instruction `json:"instructions"`
	Context      []string      `json:"context"`
}

// offlineResolver answers every base image with a minimal linux/amd64 config, so the linter
// runs without a registry.
type offlineResolver struct{}

func (offlineResolver) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + strings.Repeat("0", 64)}},
	})
	return ref, "", config, err
}

func lint(name string, dockerfile []byte) ([]warning, string, error) {
	sourceMap := llb.NewSourceMap(nil, name, "Dockerfile", dockerfile)
	// DockerfileLint records the source's definition and dereferences it: give it an empty one.
	sourceMap.Definition = &llb.Definition{}
	results, err := dockerfile2llb.DockerfileLint(context.Background(), dockerfile, dockerfile2llb.ConvertOpt{
		SourceMap:    sourceMap,
		MetaResolver: offlineResolver{},
	})
	if err != nil {
		return nil, "", err
	}
	warnings := []warning{}
	for _, w := range results.Warnings {
		var line int32
		if w.Location != nil && len(w.Location.Ranges) > 0 {
			line = w.Location.Ranges[0].Start.Line
		}
		warnings = append(warnings, warning{Rule: w.RuleName, Detail: w.Detail, Line: line})
	}
	buildError := ""
	if results.Error != nil {
		buildError = results.Error.Message
	}
	return warnings, buildError, nil
}

func instructions(dockerfile []byte) ([]instruction, error) {
	parsed, err := parser.Parse(bytes.NewReader(dockerfile))
	if err != nil {
		return nil, err
	}
	list := []instruction{}
	for _, node := range parsed.AST.Children {
		list = append(list, instruction{Instruction: strings.ToUpper(node.Value), Original: node.Original, Line: node.StartLine})
	}
	return list, nil
}

// buildContext lists the files of dir that .dockerignore lets into the build context, as the
// Docker CLI decides it (patternmatcher, last matching pattern wins).
func buildContext(dir string) ([]string, error) {
	patterns := []string{}
	if f, err := os.Open(filepath.Join(dir, ".dockerignore")); err == nil {
		patterns, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	matcher, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, err
	}
	files := []string{}
	err = filepath.WalkDir(dir, func(path string, entry fs.DirEntry, walkErr error) error {
		if walkErr != nil {
			return walkErr
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if entry.IsDir() {
			// .git and node_modules hold most of a checkout; neither may be in the context.
			if (entry.Name() == ".git" || entry.Name() == "node_modules") && mustExclude(matcher, rel) {
				return filepath.SkipDir
			}
			return nil
		}
		excluded, err := matcher.MatchesOrParentMatches(rel)
		if err != nil {
			return err
		}
		if !excluded {
			files = append(files, rel)
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

// mustExclude reports whether dir and a probe file inside it are both excluded, which with
// this project's allowlist means nothing inside can come back.
func mustExclude(matcher *patternmatcher.PatternMatcher, dir string) bool {
	dirOut, _ := matcher.MatchesOrParentMatches(dir)
	fileOut, _ := matcher.MatchesOrParentMatches(dir + "/package.json")
	return dirOut && fileOut
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: dockerfile-lint <Dockerfile> <context dir>")
		os.Exit(2)
	}
	dockerfile, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var out report
	if out.Warnings, out.Error, err = lint(filepath.Base(os.Args[1]), dockerfile); err != nil {
		fmt.Fprintln(os.Stderr, "lint:", err)
		os.Exit(1)
	}
	if out.Instructions, err = instructions(dockerfile); err != nil {
		out.Error = err.Error()
	}
	if out.Context, err = buildContext(os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "context:", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}
