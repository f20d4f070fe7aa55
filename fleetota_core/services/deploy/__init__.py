"""Deploy: Lambda packaging and the CloudFormation stack's deploy and destroy."""
