"""The WinRM runners: commands and PowerShell on Windows hosts (StackStorm's winrm runners)."""
