from k8sreach.cli import main

main()
