// Package archtest keeps docs/ARCHITECTURE.md and the README's layout true to the code: the
// package table against the imports the packages really have, and every identifier the
// document names as pkg.Name or pkg.Type.Method against the packages' declarations.
package archtest

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "sshguard-go"

// root is the module's directory, two levels above this package.
var root = filepath.Join("..", "..")

// pkgInfo is what the test knows of one of our packages: its imports of ours (by last path
// element, test files left out) and the names it declares (test files left out too).
type pkgInfo struct {
	dir     string // relative to the module, slash-separated: internal/store
	name    string // the package clause
	imports map[string]bool
	decls   map[string]bool // top-level names
	members map[string]bool // Type.Method and Type.Field
}

// loadPackages parses every package under cmd/ and internal/ with go/parser. A directory with
// only test files is not a package the table describes.
func loadPackages(t *testing.T) map[string]*pkgInfo {
	t.Helper()
	pkgs := map[string]*pkgInfo{}
	fset := token.NewFileSet()
	for _, top := range []string{"cmd", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if n := d.Name(); n == "testdata" || strings.HasPrefix(n, ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			p := pkgs[rel]
			if p == nil {
				p = &pkgInfo{dir: rel, name: f.Name.Name, imports: map[string]bool{}, decls: map[string]bool{}, members: map[string]bool{}}
				pkgs[rel] = p
			}
			for _, imp := range f.Imports {
				ip := strings.Trim(imp.Path.Value, `"`)
				if strings.HasPrefix(ip, module+"/") {
					p.imports[ip[strings.LastIndex(ip, "/")+1:]] = true
				}
			}
			addDecls(p, f)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return pkgs
}

func addDecls(p *pkgInfo, f *ast.File) {
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil || len(d.Recv.List) == 0 {
				p.decls[d.Name.Name] = true
				continue
			}
			p.members[recvName(d.Recv.List[0].Type)+"."+d.Name.Name] = true
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					p.decls[s.Name.Name] = true
					addFields(p, s.Name.Name, s.Type)
				case *ast.ValueSpec:
					for _, n := range s.Names {
						p.decls[n.Name] = true
					}
				}
			}
		}
	}
}

func addFields(p *pkgInfo, typ string, e ast.Expr) {
	switch x := e.(type) {
	case *ast.StructType:
		for _, f := range x.Fields.List {
			for _, n := range f.Names {
				p.members[typ+"."+n.Name] = true
			}
			if len(f.Names) == 0 { // embedded: its name is the type's
				p.members[typ+"."+recvName(f.Type)] = true
			}
		}
	case *ast.InterfaceType:
		for _, m := range x.Methods.List {
			for _, n := range m.Names {
				p.members[typ+"."+n.Name] = true
			}
		}
	}
}

func recvName(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.SelectorExpr:
			return x.Sel.Name
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tableRow is one row of the package table: the paths in its first cell, and the imports of
// its third ("none" for none; an empty cell is not checked).
type tableRow struct {
	line    int
	paths   []string
	imports []string
	checked bool
}

var backquoted = regexp.MustCompile("`([^`]+)`")

func packageTable(t *testing.T, doc string) []tableRow {
	t.Helper()
	var rows []tableRow
	in := false
	sc := bufio.NewScanner(strings.NewReader(doc))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = line == "## Packages"
			continue
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 3 {
			t.Fatalf("ARCHITECTURE.md:%d: a row of the package table has %d cells, want 3", n, len(cells))
		}
		r := tableRow{line: n}
		for _, m := range backquoted.FindAllStringSubmatch(cells[0], -1) {
			r.paths = append(r.paths, strings.TrimSuffix(m[1], "/"))
		}
		imp := strings.TrimSpace(cells[len(cells)-1])
		r.checked = imp != ""
		if imp != "" && imp != "none" {
			for _, s := range strings.Split(imp, ",") {
				r.imports = append(r.imports, strings.TrimSpace(s))
			}
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		t.Fatal("ARCHITECTURE.md: no package table under \"## Packages\"")
	}
	return rows
}

func keys(m map[string]bool) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// TestPackageTable compares the table of docs/ARCHITECTURE.md with the imports the packages
// have, and wants every package of cmd/ and internal/ in it.
func TestPackageTable(t *testing.T) {
	pkgs := loadPackages(t)
	rows := packageTable(t, readDoc(t, "docs/ARCHITECTURE.md"))
	listed := map[string]bool{}
	for _, r := range rows {
		for _, path := range r.paths {
			listed[path] = true
			p, ok := pkgs[path]
			if !ok {
				if _, err := os.Stat(filepath.Join(root, path)); err != nil {
					t.Errorf("ARCHITECTURE.md:%d: the table names `%s`, which does not exist", r.line, path)
				}
				continue
			}
			if !r.checked {
				continue
			}
			want := keys(p.imports)
			got := slices.Clone(r.imports)
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Errorf("ARCHITECTURE.md:%d: `%s` imports (of ours) %s; the table says %s",
					r.line, path, orNone(want), orNone(got))
			}
		}
	}
	for _, path := range keys(boolSet(pkgs)) {
		if !listed[path] {
			t.Errorf("ARCHITECTURE.md: package `%s` is not in the package table: add a row | `%s` | what it holds | %s |",
				path, path, orNone(keys(pkgs[path].imports)))
		}
	}
}

func boolSet(pkgs map[string]*pkgInfo) map[string]bool {
	m := map[string]bool{}
	for k := range pkgs {
		m[k] = true
	}
	return m
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// notIdentifiers are backquoted spans shaped like pkg.Name that name something else.
var notIdentifiers = map[string]bool{
	"api.token": true, // the token file next to the database
}

var qualified = regexp.MustCompile(`^([a-z][a-z0-9]*)\.([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?(?:\(.*\))?$`)

// codeIdent finds pkg.Name and pkg.Type.Method in the document's fenced drawings.
var codeIdent = regexp.MustCompile(`\b([a-z][a-z0-9]*)\.([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?`)

// TestNamedIdentifiers wants every pkg.Name and pkg.Type.Method the document names (in
// backquotes, and in its fenced drawings) to be declared in that package.
func TestNamedIdentifiers(t *testing.T) {
	pkgs := loadPackages(t)
	byName := map[string]*pkgInfo{}
	for _, p := range pkgs {
		if p.name != "main" {
			byName[p.name] = p
		}
	}
	doc := readDoc(t, "docs/ARCHITECTURE.md")
	fenced := false
	for n, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		var found [][]string
		if fenced {
			found = codeIdent.FindAllStringSubmatch(line, -1)
		} else {
			for _, m := range backquoted.FindAllStringSubmatch(line, -1) {
				if notIdentifiers[m[1]] {
					continue
				}
				if q := qualified.FindStringSubmatch(m[1]); q != nil {
					found = append(found, q)
				}
			}
		}
		for _, m := range found {
			p := byName[m[1]]
			if p == nil {
				continue
			}
			name := m[2]
			ok := p.decls[name]
			if m[3] != "" {
				name += "." + m[3]
				ok = p.members[name]
			}
			if !ok {
				t.Errorf("ARCHITECTURE.md:%d: `%s.%s` is not declared in %s", n+1, m[1], name, p.dir)
			}
		}
	}
}

// TestReadmeLayout wants every package of internal/ in the README's layout.
func TestReadmeLayout(t *testing.T) {
	pkgs := loadPackages(t)
	readme := readDoc(t, "README.md")
	i := strings.Index(readme, "\n## Development")
	if i < 0 {
		t.Fatal("README.md: no \"## Development\" section")
	}
	layout := readme[i:]
	for _, path := range keys(boolSet(pkgs)) {
		if strings.HasPrefix(path, "internal/") && !strings.Contains(layout, "\n"+path+"/") {
			t.Errorf("README.md: the layout under \"## Development\" does not list %s/", path)
		}
	}
}
