"""One module per `blueprint` command. Each imports its heavy dependencies inside the command
function so that `blueprint --help` stays instant."""
