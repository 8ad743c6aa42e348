module github.com/imgbase/imgbase

go 1.26.8

require (
	aead.dev/minisign v0.3.0
	github.com/cpuguy83/go-md2man/v2 v2.0.6
	github.com/moby/sys/mountinfo v0.7.3
	github.com/spf13/cobra v1.10.2
	github.com/spf13/pflag v1.0.9
	golang.org/x/sys v0.49.0
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
	go.yaml.in/yaml/v3 v3.0.4 // indirect
	golang.org/x/crypto v0.13.0 // indirect
)
