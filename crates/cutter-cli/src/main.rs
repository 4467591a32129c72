fn main() {
    eprintln!("cutter: the command line lands with the CLI issue");
    std::process::exit(2);
}
