fn main() {
    eprintln!("ostree-push: the native push client is not implemented yet (see issue 4)");
    std::process::exit(1);
}
