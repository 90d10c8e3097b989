// Command funclen prints the longest functions of the module (file:line, length in lines,
// name) and the median length, from the Go sources under the current directory.
//
//	go run ./scripts/funclen            # the ten longest, test files left out
//	go run ./scripts/funclen -n 20 -tests
package main

import (
	"cmp"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

type fn struct {
	pos   string
	lines int
	name  string
}

func main() {
	n := flag.Int("n", 10, "how many functions to print")
	tests := flag.Bool("tests", false, "count _test.go files too")
	flag.Parse()
	root := "."
	if flag.NArg() > 0 {
		root = flag.Arg(0)
	}
	fns, err := collect(root, *tests)
	if err != nil {
		fmt.Fprintln(os.Stderr, "funclen:", err)
		os.Exit(1)
	}
	slices.SortStableFunc(fns, func(a, b fn) int {
		return cmp.Or(cmp.Compare(b.lines, a.lines), cmp.Compare(a.pos, b.pos))
	})
	for i := 0; i < *n && i < len(fns); i++ {
		fmt.Printf("%4d  %-50s %s\n", fns[i].lines, fns[i].pos, fns[i].name)
	}
	if len(fns) > 0 {
		fmt.Printf("%d functions, median %d lines\n", len(fns), fns[len(fns)/2].lines)
	}
}

func collect(root string, tests bool) ([]fn, error) {
	fset := token.NewFileSet()
	var fns []fn
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || (!tests && strings.HasSuffix(path, "_test.go")) {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			d, ok := decl.(*ast.FuncDecl)
			if !ok || d.Body == nil {
				continue
			}
			start, end := fset.Position(d.Pos()), fset.Position(d.End())
			fns = append(fns, fn{
				pos:   fmt.Sprintf("%s:%d", filepath.ToSlash(path), start.Line),
				lines: end.Line - start.Line + 1,
				name:  funcName(d),
			})
		}
		return nil
	})
	return fns, err
}

func funcName(d *ast.FuncDecl) string {
	if d.Recv == nil || len(d.Recv.List) == 0 {
		return d.Name.Name
	}
	t := d.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + d.Name.Name
	}
	return d.Name.Name
}
