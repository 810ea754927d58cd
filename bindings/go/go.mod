module example.invalid/libfleets/bindings/go

go 1.24
