from domains.entrypoint import main
from domains.finance.app import domain

main(domain)
