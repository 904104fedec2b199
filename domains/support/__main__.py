from domains.entrypoint import main
from domains.support.app import domain

main(domain)
