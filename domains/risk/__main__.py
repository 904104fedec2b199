from domains.entrypoint import main
from domains.risk.app import domain

main(domain)
