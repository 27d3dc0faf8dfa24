"""Test doubles, in one package: fakes of our ports, fakes of the Azure SDK clients, throwaway HTTP servers."""
