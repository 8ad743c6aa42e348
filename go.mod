module github.com/imgbase/imgbase

go 1.26.8
