module github.com/imgbase/imgbase

go 1.26.8

require (
	aead.dev/minisign v0.3.0 // indirect
	golang.org/x/crypto v0.13.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
